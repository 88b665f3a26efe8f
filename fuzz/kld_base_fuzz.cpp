// Feeds arbitrary bytes, as a file, to the KL-divergence base reader (llama-perplexity's format):
// it must either accept them as a whole base file or throw hearth::Error. After a read, every
// token and the last record's bytes are touched, so a size check that let a short file through
// shows up under ASan.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "measure/kl_divergence.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const int fd = memfd_create("kld-base", 0);
    if (fd < 0) return 0;
    for (size_t done = 0; done < size;) {
        const ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
    }
    try {
        const auto header = hearth::measure::read_kld_base_header("/proc/self/fd/" + std::to_string(fd));
        volatile int64_t sink = 0;
        for (const int32_t token : header.tokens) sink = sink + token;
        if (static_cast<int64_t>(header.tokens.size()) != header.n_ctx * header.chunks) __builtin_trap();
        const uint64_t records = static_cast<uint64_t>(header.chunks * header.scored_per_chunk());
        const uint64_t expected = 20 + header.tokens.size() * 4 +
                                  records * static_cast<uint64_t>(hearth::measure::log_prob_record_size(header.vocab)) * 2;
        if (expected != size) __builtin_trap();
        sink = sink + data[size - 1];
        (void)sink;
    } catch (const hearth::Error&) {
    }
    close(fd);
    return 0;
}
