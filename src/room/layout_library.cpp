#include "tessera/room/layout_library.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

#include "tessera/layout/geometry.h"
#include "tessera/protocol/error.h"

namespace tessera::room {
namespace fs = std::filesystem;

protocol::LayoutSpec loadLayoutFile(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    if (!in || !(text << in.rdbuf())) throw Error(ErrorCode::BadRequest, "cannot read the file");
    protocol::LayoutSpec spec = protocol::parseLayoutSpec(text.str());
    if (spec.name != file.stem().string()) {
        throw Error(ErrorCode::BadRequest,
                    "name '" + spec.name + "' must equal the file name without .json ('" + file.stem().string() + "')");
    }
    return spec;
}

LayoutLibrary::LayoutLibrary(fs::path directory, std::uint64_t maxCanvasPixels)
    : m_directory(std::move(directory)), m_maxCanvasPixels(maxCanvasPixels),
      m_specs(load(m_directory, m_maxCanvasPixels)) {}

void LayoutLibrary::reload() {
    // Parse into a fresh set first: a bad file throws before anything changes.
    Specs fresh = load(m_directory, m_maxCanvasPixels);
    m_specs.swap(fresh);
}

std::optional<protocol::LayoutSpec> LayoutLibrary::find(std::string_view name) const {
    const auto it = m_specs.find(name);
    if (it == m_specs.end()) return std::nullopt;
    return it->second;
}

std::vector<std::string> LayoutLibrary::names() const {
    std::vector<std::string> out;
    out.reserve(m_specs.size());
    for (const auto& entry : m_specs) out.push_back(entry.first);
    return out;
}

LayoutLibrary::Specs LayoutLibrary::load(const fs::path& directory, std::uint64_t maxCanvasPixels) {
    std::error_code ec;
    fs::directory_iterator it(directory, ec);
    if (ec)
        throw Error(ErrorCode::Internal, directory.string() + ": cannot list the layouts directory: " + ec.message());

    // Sorted, so that "the first bad file" is the same on every machine.
    std::vector<fs::path> files;
    for (const fs::directory_entry& entry : it) {
        if (entry.path().extension() == ".json" && entry.is_regular_file(ec)) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());

    Specs specs;
    for (const fs::path& file : files) {
        try {
            protocol::LayoutSpec spec = loadLayoutFile(file);
            protocol::checkCanvasArea(spec, maxCanvasPixels);
            specs.emplace(spec.name, std::move(spec)); // names are unique: each equals its file name
        } catch (const Error& e) {
            throw Error(e.code(), file.string() + ": " + e.what());
        }
    }
    // Rooms start with "grid" by default: it must exist even in an empty directory.
    if (!specs.contains("grid")) specs.emplace("grid", layout::defaultGridSpec());
    return specs;
}

} // namespace tessera::room
