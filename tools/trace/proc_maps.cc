// proc_maps.cc - parsing /proc/PID/maps lines (proc_maps.hpp).
#include "trace/proc_maps.hpp"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace umn::trace {

namespace {

bool parse_line(const std::string& text, MapLine* line) {
  std::istringstream in(text);
  std::string range, perms;
  if (!(in >> range >> perms >> std::hex >> line->offset >> line->device >> std::dec >> line->inode)) return false;
  const size_t dash = range.find('-');
  if (dash == std::string::npos || perms.size() < 4) return false;
  line->range = {std::stoull(range.substr(0, dash), nullptr, 16), std::stoull(range.substr(dash + 1), nullptr, 16)};
  line->read = perms[0] == 'r';
  line->write = perms[1] == 'w';
  line->exec = perms[2] == 'x';
  line->shared = perms[3] == 's';
  std::getline(in >> std::ws, line->path);
  return true;
}

}  // namespace

std::vector<MapLine> read_maps(pid_t tid) {
  std::vector<MapLine> maps;
  std::ifstream file(fmt::format("/proc/{}/task/{}/maps", tid, tid));
  for (std::string text; std::getline(file, text);) {
    MapLine line;
    if (parse_line(text, &line)) maps.push_back(std::move(line));
  }
  return maps;
}

std::string describe_address(const std::vector<MapLine>& maps, uint64_t address) {
  for (const MapLine& line : maps) {
    if (address < line.range.start || address >= line.range.end) continue;
    if (line.path.empty() || line.path[0] == '[') {
      return fmt::format("{}+{:#x}", line.path.empty() ? "[anon]" : line.path, address - line.range.start);
    }
    const size_t slash = line.path.rfind('/');
    return fmt::format("{}+{:#x}", slash == std::string::npos ? line.path : line.path.substr(slash + 1),
                       address - line.range.start + line.offset);
  }
  return fmt::format("?{:#x}", address);
}

}  // namespace umn::trace
