#pragma once
// Pipeline fragments: gst-launch descriptions in pipelines/*.pipeline, one
// per file, so operators change encoders and decoders without rebuilding.
// See pipelines/README.md for the files, their `name=` elements and the
// ${placeholders}.
#include <map>
#include <string>
#include <vector>

#include "gst_util.h"

namespace tessera::media {

using FragmentVars = std::map<std::string, std::string>;

class Fragments {
public:
    // Reads and checks the fragments `names` (files <dir>/<name>.pipeline);
    // throws Error(Internal) naming the file, the line and GStreamer's message,
    // so the server never starts half-configured.
    Fragments(const std::string& dir, const FragmentVars& vars, const std::vector<std::string>& names);

    // Loads one more fragment under `key` (the same file may be loaded under
    // several keys with different values, e.g. one encoder per tier).
    void load(const std::string& key, const std::string& path, const FragmentVars& vars);

    // A new bin from a loaded fragment, its unlinked pads ghosted (only one
    // sink and one source pad can be: a fragment with more inputs is made
    // with ghostUnlinked false and its inputs found by name). Read-only, so
    // callable from streaming threads.
    ElementRef makeBin(const std::string& name, bool ghostUnlinked = true) const;

private:
    std::map<std::string, std::string> m_texts; // name -> description with placeholders filled
};

// Loads the file, strips comments, fills ${placeholders} from `vars` and
// parses it; throws Error naming file:line. Returns the filled description.
std::string loadFragment(const std::string& path, const FragmentVars& vars);

// Sample values for every placeholder, for `tessera validate`.
FragmentVars sampleFragmentVars();

} // namespace tessera::media
