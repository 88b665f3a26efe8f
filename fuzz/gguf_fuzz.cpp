// Feeds arbitrary bytes to the GGUF reader: it must either parse them or throw hearth::Error.
// After a parse, every metadata value is walked and every tensor span's first and last byte
// is read, so that a span reaching outside the input shows up under ASan.
#include <cstddef>
#include <cstdint>

#include "common/error.h"
#include "gguf/gguf.h"

namespace {

size_t walk(const hearth::gguf::Value& value) {
    size_t count = 1;
    if (const auto* text = value.as_string()) count += text->size();
    if (const auto* array = value.as_array()) {
        for (const auto& item : array->items) count += walk(item);
    }
    return count;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const hearth::gguf::File file = hearth::gguf::File::parse({data, size}, "fuzz.gguf");
        volatile size_t sink = file.alignment() + file.data_section_offset();
        for (const auto& entry : file.metadata()) {
            sink = sink + walk(entry.value);
            if (file.find(entry.key) != &entry.value) __builtin_trap();
        }
        for (const auto& tensor : file.tensors()) {
            const auto bytes = file.tensor_data(tensor);
            if (bytes.size() != tensor.size_bytes || file.find_tensor(tensor.name) != &tensor)
                __builtin_trap();
            sink = sink + bytes.front() + bytes.back();
        }
        (void)sink;
    } catch (const hearth::Error&) {
    }
    return 0;
}
