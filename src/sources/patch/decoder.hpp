// decoder.hpp - the length of one x86-64 instruction: sites.cc walks a function body from its entry,
// instruction by instruction, with it (sites.hpp, "instruction boundaries"). Only lengths are decoded:
// no operands, no text (formatting every instruction's text made Capstone's decoder ~85% of the
// installation's instructions; docs/process.md, "Cost").
//
// Two implementations of the same calls, one linked into a program:
//   decoder_zydis.cc     libumn (shared and static): Zydis 4 in its minimal mode.
//   decoder_capstone.cc  fully static programs when no static Zydis exists (Debian 12 packages Zydis as
//                        a shared object only): linked ahead of libumn.a, it keeps the archive's Zydis
//                        member out (tests/programs, umn_prog_static).
// Both decode in 64-bit mode; a byte sequence either rejects is where sites.cc stops decoding a function.
//
// Locking: none; a Decoder is used by one thread at a time. Lifetime: the caller owns it (on its stack);
// it holds no pointer into the bytes it decoded. Context: not a signal handler (the Capstone stand-in
// allocates its handle with malloc; Zydis allocates nothing). Memory ordering: none.
#pragma once

#include <cstddef>

namespace umn::detail::patch {

class Decoder {
 public:
  Decoder() noexcept;
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Whether the decoder could be set up (false: the Capstone stand-in's handle allocation failed).
  bool ready() const noexcept { return ready_; }

  // The length of the instruction at code, of which at most avail bytes may be read. Return: 1 to 15,
  // or 0 when the bytes are not a valid instruction (or one longer than avail).
  // Context: ready() must be true.
  unsigned length(const unsigned char* code, size_t avail) noexcept;

 private:
  alignas(8) unsigned char state_[32];  // the implementation's decoder state
  bool ready_ = false;
};

}  // namespace umn::detail::patch
