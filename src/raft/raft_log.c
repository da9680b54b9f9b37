/* In-memory log: see raft_log.h (being written). */
typedef int raft_log_placeholder_;
