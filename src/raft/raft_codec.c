/* Binary encoding of messages and state: see raft_codec.h (being written). */
typedef int raft_codec_placeholder_;
