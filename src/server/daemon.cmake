# raftkvd, the daemon: configuration, log, disk thread, peer transport, the node driver and main.
# Included from the top-level CMakeLists.txt (after src/raft, src/storage, src/kv, src/server).
find_package(PkgConfig REQUIRED)
pkg_check_modules(RAFTKVD_UV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(RAFTKVD_CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(RAFTKVD_SODIUM REQUIRED IMPORTED_TARGET libsodium)

set(RAFTKVD_DIR ${CMAKE_SOURCE_DIR}/src/server)

# The configuration parser alone, so its unit tests need no loop.
add_library(raftkvd_config STATIC ${RAFTKVD_DIR}/config.c ${RAFTKVD_DIR}/disk_fault.c)
target_include_directories(raftkvd_config PUBLIC ${RAFTKVD_DIR})
target_link_libraries(raftkvd_config PUBLIC raftcore raftkv_kv raftstorage raftkv_members
                      PkgConfig::RAFTKVD_CJSON m)
target_compile_options(raftkvd_config PRIVATE ${RAFTKV_STRICT_FLAGS})

add_library(raftkvd_core STATIC
            ${RAFTKVD_DIR}/log.c
            ${RAFTKVD_DIR}/disk.c
            ${RAFTKVD_DIR}/transport.c
            ${RAFTKVD_DIR}/transport_handshake.c
            ${RAFTKVD_DIR}/transport_snap.c
            ${RAFTKVD_DIR}/node.c
            ${RAFTKVD_DIR}/node_snap.c)
target_include_directories(raftkvd_core PUBLIC ${RAFTKVD_DIR})
target_link_libraries(raftkvd_core PUBLIC raftkvd_config raftcore raftstorage raftkv_kv
                      PkgConfig::RAFTKVD_UV PkgConfig::RAFTKVD_SODIUM)
target_compile_options(raftkvd_core PRIVATE ${RAFTKV_STRICT_FLAGS})

# The client front-ends (src/server/frontend.cmake) are linked in when their library exists;
# decided at generate time, so this file need not be included after theirs.
add_executable(raftkvd ${RAFTKVD_DIR}/main.c)
target_link_libraries(raftkvd PRIVATE $<TARGET_NAME_IF_EXISTS:raftkv_frontend> raftkvd_core)
target_compile_definitions(raftkvd PRIVATE
                           $<$<TARGET_EXISTS:raftkv_frontend>:RAFTKV_HAVE_FRONTEND=1>)
target_compile_options(raftkvd PRIVATE ${RAFTKV_STRICT_FLAGS})
