#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

namespace {

// The machine's CPU counters (/proc/stat's first line), in ticks.
struct CpuTicks {
    unsigned long long busy = 0, steal = 0, total = 0;
};

CpuTicks cpuTicks() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    unsigned long long v[8] = {};
    in >> cpu;
    for (auto& x : v) in >> x;
    // user nice system idle iowait irq softirq steal
    CpuTicks t;
    t.steal = v[7];
    t.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    t.total = t.busy + v[3] + v[4];
    return t;
}

// Each failed assertion says how busy the machine was: a real-time check on
// a machine that others saturate fails for want of CPU, not for a bug, and
// the failure's own message cannot tell the two apart. scripts/failures
// shows these lines with the failures.
class MachineLoad : public Catch::TestEventListenerBase {
public:
    using TestEventListenerBase::TestEventListenerBase;

    void testCaseStarting(const Catch::TestCaseInfo& info) override {
        TestEventListenerBase::testCaseStarting(info);
        m_start = cpuTicks();
    }

    bool assertionEnded(const Catch::AssertionStats& stats) override {
        if (!stats.assertionResult.isOk()) {
            const CpuTicks now = cpuTicks();
            const double total = static_cast<double>(now.total - m_start.total);
            std::ifstream loadavg("/proc/loadavg");
            std::string l1, l5, l15;
            loadavg >> l1 >> l5 >> l15;
            std::ostringstream line;
            line << "machine: at " << stats.assertionResult.getSourceInfo() << ", load average " << l1 << " " << l5
                 << " " << l15 << "; since the test case started, all CPUs "
                 << (total > 0 ? static_cast<int>(100 * (now.busy - m_start.busy) / total) : 0) << " % busy, "
                 << (total > 0 ? static_cast<int>(100 * (now.steal - m_start.steal) / total) : 0) << " % stolen";
            std::cout << line.str() << std::endl;
        }
        return true;
    }

private:
    CpuTicks m_start;
};

} // namespace

CATCH_REGISTER_LISTENER(MachineLoad)
