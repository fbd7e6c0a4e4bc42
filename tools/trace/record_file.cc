// record_file.cc - creating and removing the shared record file (record_file.hpp).
#include "trace/record_file.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>

namespace umn::trace {

bool RecordFile::create(bool log) {
  const char* dir = std::getenv("TMPDIR");
  std::string name = std::string(dir != nullptr && dir[0] != '\0' ? dir : "/tmp") + "/umn-trace-XXXXXX";
  int fd = mkstemp(name.data());
  if (fd < 0) return false;
  path_ = name;
  void* at = MAP_FAILED;
  if (ftruncate(fd, sizeof(Region)) == 0) at = mmap(nullptr, sizeof(Region), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (at == MAP_FAILED) return false;
  region_ = static_cast<Region*>(at);
  region_->header.version = kVersion;
  region_->header.log = log ? 1 : 0;
  region_->header.region_size = sizeof(Region);
  region_->header.magic = kMagic;  // last: a process mapping the file checks it
  return true;
}

RecordFile::~RecordFile() {
  if (region_ != nullptr) munmap(region_, sizeof(Region));
  if (!path_.empty()) unlink(path_.c_str());
}

}  // namespace umn::trace
