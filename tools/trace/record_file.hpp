// record_file.hpp - the tracer's side of the shared record (src/sources/preload/trace_record.hpp):
// creates the file, maps it, and removes it when the run is over.
//
// Locking: none (the Region's own rules). Lifetime: the object owns the file and the mapping.
// Context: the tracer process. Memory ordering: the header is written before the command starts.
#pragma once

#include <string>

#include "sources/preload/trace_record.hpp"

namespace umn::trace {

class RecordFile {
 public:
  // Creates a zero-filled (sparse) record file under $TMPDIR or /tmp. Return: false with errno set.
  bool create(bool log);
  ~RecordFile();
  Region* region() const noexcept { return region_; }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  Region* region_ = nullptr;
};

}  // namespace umn::trace
