# The client front-ends (text protocol + RESP2 servers, forwarding to the leader): raftkv_frontend.
# It calls the node driver API of node.h, which raftkvd (node.c) or a test's fake node provides.
find_package(PkgConfig REQUIRED)
pkg_check_modules(RAFTKV_FE_UV REQUIRED IMPORTED_TARGET libuv)
add_library(raftkv_frontend STATIC
  ${CMAKE_CURRENT_LIST_DIR}/conn.c
  ${CMAKE_CURRENT_LIST_DIR}/forward.c
  ${CMAKE_CURRENT_LIST_DIR}/frontend.c
  ${CMAKE_CURRENT_LIST_DIR}/frontend_text.c
  ${CMAKE_CURRENT_LIST_DIR}/frontend_resp.c
  ${CMAKE_CURRENT_LIST_DIR}/growbuf.c)
target_include_directories(raftkv_frontend PUBLIC ${CMAKE_CURRENT_LIST_DIR} ${CMAKE_SOURCE_DIR}/src/raft)
target_link_libraries(raftkv_frontend PUBLIC raftkv_proto raftkv_kv raftkv_members
                      PkgConfig::RAFTKV_FE_UV)
target_compile_options(raftkv_frontend PRIVATE ${RAFTKV_STRICT_FLAGS})
