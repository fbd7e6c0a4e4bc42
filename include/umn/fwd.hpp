// fwd.hpp - forward declarations of umn's C++ API (see umn.hpp for the tour).
#pragma once

namespace umn {
class AddressSpace;
class Range;
class Invalidation;
class IntervalNotifier;
class TwoPassNotifier;
class FinishRecord;
class ReadSection;
class Notifier;
enum class Callbacks : unsigned;
template <class Ops>
class Registration;
template <class T>
class Result;
}  // namespace umn
