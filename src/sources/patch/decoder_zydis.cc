// decoder_zydis.cc - instruction lengths with Zydis 4 (contract: decoder.hpp). The minimal mode decodes
// prefixes, opcode, ModRM/SIB, displacement and immediates (so the length), and no operand, attribute or
// text; with no context argument nothing is kept for operand decoding either.
#include <Zydis/Decoder.h>
#include <Zydis/Zydis.h>

#include <new>

#include "sources/patch/decoder.hpp"

namespace umn::detail::patch {
namespace {

static_assert(ZYDIS_VERSION_MAJOR(ZYDIS_VERSION) >= 4, "umn needs Zydis 4 or later (ZYDIS_DECODER_MODE_MINIMAL)");
static_assert(sizeof(ZydisDecoder) <= 32 && alignof(ZydisDecoder) <= 8, "decoder.hpp: state_ too small");

}  // namespace

Decoder::Decoder() noexcept {
  auto* zydis = new (state_) ZydisDecoder;
  ready_ = ZYAN_SUCCESS(ZydisDecoderInit(zydis, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)) &&
           ZYAN_SUCCESS(ZydisDecoderEnableMode(zydis, ZYDIS_DECODER_MODE_MINIMAL, ZYAN_TRUE));
}

Decoder::~Decoder() = default;  // ZydisDecoder is a plain struct: nothing to release

unsigned Decoder::length(const unsigned char* code, size_t avail) noexcept {
  ZydisDecodedInstruction instruction;
  const auto* zydis = std::launder(reinterpret_cast<const ZydisDecoder*>(state_));
  if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(zydis, nullptr, code, avail, &instruction))) return 0;
  return instruction.length;
}

}  // namespace umn::detail::patch
