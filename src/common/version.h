// hearth's version, as `hearth --version` prints it and as reports (bench -o json) record it.
#pragma once

namespace hearth {

inline constexpr const char* kVersion = "0.1.0";

}  // namespace hearth
