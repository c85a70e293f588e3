#pragma once
// The named layouts rooms can switch to: every data/layouts/*.json, plus the
// built-in grid when no file defines "grid". Main thread only.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/protocol/layout_spec.h"

namespace tessera::room {

// Reads and parses one layout file. Its name without ".json" must equal the
// spec's name, so that a layout is found under the name of its file. Throws
// Error(BadRequest) with the reason (not the file name: callers add it).
protocol::LayoutSpec loadLayoutFile(const std::filesystem::path& file);

class LayoutLibrary {
public:
    // Loads every *.json in `directory`. Throws Error naming the first bad
    // file; a canvas over `maxCanvasPixels` (0: no bound) is bad.
    explicit LayoutLibrary(std::filesystem::path directory, std::uint64_t maxCanvasPixels = 0);

    // Re-reads the directory. The new set replaces the old one only if every
    // file parses; otherwise this throws and the library is unchanged.
    void reload();

    // A copy: a reload() may replace the stored spec at any time.
    std::optional<protocol::LayoutSpec> find(std::string_view name) const;
    std::vector<std::string> names() const; // sorted
    const std::filesystem::path& directory() const noexcept { return m_directory; }

private:
    using Specs = std::map<std::string, protocol::LayoutSpec, std::less<>>;
    static Specs load(const std::filesystem::path& directory, std::uint64_t maxCanvasPixels);

    std::filesystem::path m_directory;
    std::uint64_t m_maxCanvasPixels;
    Specs m_specs;
};

} // namespace tessera::room
