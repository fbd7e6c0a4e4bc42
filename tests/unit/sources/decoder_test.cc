// decoder_test.cc - patch::Decoder::length() (src/sources/patch/decoder.hpp), the one call the site
// finder walks function bodies with: the lengths of the instructions that make a site, of the movabs
// whose immediate holds a site's bytes (issue 17.11), and 0 for bytes that are no instruction or one
// longer than the bytes given (the walk stops there).
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "sources/patch/decoder.hpp"

namespace umn::test {
namespace {

unsigned length_of(const std::vector<unsigned char>& bytes, size_t avail) {
  detail::patch::Decoder decoder;
  EXPECT_TRUE(decoder.ready());
  return decoder.length(bytes.data(), avail);
}
unsigned length_of(const std::vector<unsigned char>& bytes) { return length_of(bytes, bytes.size()); }

// The instructions of a site: the syscall, the two windows and glibc's syscall() window.
TEST(Decoder, SiteInstructionsHaveTheirEncodedLengths) {
  EXPECT_EQ(length_of({0x0f, 0x05}), 2u);                                // syscall
  EXPECT_EQ(length_of({0xb8, 0x0b, 0x00, 0x00, 0x00}), 5u);              // mov $11,%eax
  EXPECT_EQ(length_of({0x48, 0xc7, 0xc0, 0x0b, 0x00, 0x00, 0x00}), 7u);  // mov $11,%rax
  EXPECT_EQ(length_of({0x4c, 0x8b, 0x4c, 0x24, 0x08}), 5u);              // mov 8(%rsp),%r9
}

// A movabs whose immediate holds "mov $11,%eax; syscall" is one 10-byte instruction: the walk steps
// over the pattern (Sites.PatternInsideAnotherInstructionIsLeftAlone checks the whole path).
TEST(Decoder, MovabsIsOneInstructionOverItsImmediate) {
  EXPECT_EQ(length_of({0x48, 0xb8, 0xb8, 0x0b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x90}), 10u);
}

// Only the first instruction is measured, however many bytes follow it; an instruction needing one
// byte more than given is not decoded.
TEST(Decoder, LengthStopsAtTheFirstInstructionAndNeedsAllItsBytes) {
  const std::vector<unsigned char> two = {0xb8, 0x0b, 0x00, 0x00, 0x00, 0x0f, 0x05};
  EXPECT_EQ(length_of(two), 5u);
  EXPECT_EQ(length_of(two, 5), 5u);
  EXPECT_EQ(length_of(two, 4), 0u);
  EXPECT_EQ(length_of({0x0f, 0x05}, 1), 0u);
}

// Bytes that are no instruction in 64-bit mode give 0; ud2 (an instruction that faults) is a control.
TEST(Decoder, InvalidBytesHaveNoLength) {
  EXPECT_EQ(length_of({0x06, 0x90}), 0u);        // push %es: invalid in 64-bit mode
  EXPECT_EQ(length_of({0x27, 0x90}), 0u);        // daa: invalid in 64-bit mode
  EXPECT_EQ(length_of({0x0f, 0x04, 0x90}), 0u);  // no instruction has this opcode
  EXPECT_EQ(length_of({0x0f, 0x0b, 0x90}), 2u);  // ud2
}

}  // namespace
}  // namespace umn::test
