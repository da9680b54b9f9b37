#include "raft.h"
