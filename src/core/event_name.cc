// event_name.cc - umn_notifier_event_name(): the printable name of each umn_notifier_event (the events
// belong to the core; umn/process.h declares the name because the process tools print it).
#include "umn/process.h"

extern "C" const char* umn_notifier_event_name(umn_notifier_event event) {
  static const char* const names[] = {"UNMAP",      "CLEAR",   "PROTECTION_VMA", "PROTECTION_PAGE",
                                      "SOFT_DIRTY", "RELEASE", "MIGRATE",        "EXCLUSIVE"};
  static_assert(sizeof(names) / sizeof(names[0]) == UMN_NOTIFY_EXCLUSIVE + 1);
  return static_cast<unsigned>(event) <= UMN_NOTIFY_EXCLUSIVE ? names[event] : "?";
}
