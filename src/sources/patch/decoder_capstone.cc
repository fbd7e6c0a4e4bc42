// decoder_capstone.cc - instruction lengths with Capstone, for fully static programs where no static
// Zydis library exists (contract: decoder.hpp). Not part of libumn: a static program links this object
// ahead of libumn.a (tests/programs/CMakeLists.txt, umn_prog_static). Capstone formats every decoded
// instruction's text (cs_disasm_iter cannot skip it): ~10x the instructions of the Zydis decoder.
#include <capstone/capstone.h>

#include <cstdint>
#include <new>

#include "sources/patch/decoder.hpp"

namespace umn::detail::patch {
namespace {

struct Capstone {
  csh handle = 0;
  cs_insn* insn = nullptr;  // cs_malloc's: reused for every instruction
};
static_assert(sizeof(Capstone) <= 32 && alignof(Capstone) <= 8, "decoder.hpp: state_ too small");

Capstone& capstone(unsigned char* state) noexcept { return *std::launder(reinterpret_cast<Capstone*>(state)); }

}  // namespace

Decoder::Decoder() noexcept {
  auto* cs = new (state_) Capstone;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs->handle) != CS_ERR_OK) return;
  cs->insn = cs_malloc(cs->handle);
  ready_ = cs->insn != nullptr;
}

Decoder::~Decoder() {
  Capstone& cs = capstone(state_);
  if (cs.insn != nullptr) cs_free(cs.insn, 1);
  if (cs.handle != 0) cs_close(&cs.handle);
}

unsigned Decoder::length(const unsigned char* code, size_t avail) noexcept {
  Capstone& cs = capstone(state_);
  const uint8_t* at = code;
  uint64_t address = 0;
  if (!cs_disasm_iter(cs.handle, &at, &avail, &address, cs.insn)) return 0;
  return cs.insn->size;
}

}  // namespace umn::detail::patch
