// Debian's libxxhash (libxxhash-dev): XXH3-128, the checksum of snapshot files.
#pragma once
#include <xxhash.h>
