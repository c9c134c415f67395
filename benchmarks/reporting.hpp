// Shared by the benchmark programs: a console reporter that also keeps each run's figures (the
// median when repetitions are aggregated), a ratio table, and the GEMM backend context lines.
#pragma once

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "auxl/core/blas.hpp"

namespace auxl_bench {

/// Console output as usual; time (ms or the benchmark's unit) and counters kept by run name.
class recording_reporter : public benchmark::ConsoleReporter {
public:
    // Colour only on a terminal: a log redirected to a file stays plain text (Google Benchmark's
    // --benchmark_color applies to its own reporter, not to one passed in).
    recording_reporter() : ConsoleReporter(isatty(fileno(stdout)) ? OO_ColorTabular : OO_Tabular) {}

    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const auto& run : runs) {
            if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
            time[run.run_name.str()] = run.GetAdjustedRealTime();
            for (const auto& [name, counter] : run.counters) counters[name][run.run_name.str()] = counter.value;
        }
    }
    std::map<std::string, double> time;
    std::map<std::string, std::map<std::string, double>> counters;
};

/// Records which GEMM backend (and OpenBLAS kernel) and thread settings the run used.
inline void add_gemm_context() {
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    benchmark::AddCustomContext("gemm_backend", auxl::gemm_backend());
    benchmark::AddCustomContext("OPENBLAS_CORETYPE", coretype ? coretype : "(unset)");
    benchmark::AddCustomContext("gemm_default_threads", std::to_string(auxl::gemm_threads()));
}

inline void print_gemm_line() {
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    std::printf("GEMM backend: %s (OPENBLAS_CORETYPE=%s)\n", auxl::gemm_backend().c_str(), coretype ? coretype : "unset");
}

/// The time recorded for `name`: the run of that name, or of that name with the suffixes Google
/// Benchmark adds to it (/iterations:N, /real_time); null if there is none.
inline const double* find_time(const std::map<std::string, double>& time, const std::string& name) {
    const auto it = time.lower_bound(name);
    if (it != time.end() && (it->first == name || it->first.rfind(name + "/", 0) == 0)) return &it->second;
    return nullptr;
}

/// One row per name: its time with 1 and 2 threads and the ratio to `reference`'s in the same
/// run; a run is looked up as prefix + name + suffix_format + thread count.
inline void print_ratio_table(const std::map<std::string, double>& time, const std::vector<std::string>& names,
                              const std::string& reference, const std::string& suffix_format = "/batch:128/threads:",
                              const std::string& prefix = "") {
    std::printf("%-26s %12s %8s %12s %8s\n", "method", "1 thread", "ratio", "2 threads", "ratio");
    for (const auto& name : names) {
        std::printf("%-26s", name.c_str());
        for (int threads : {1, 2}) {
            const std::string suffix = suffix_format + std::to_string(threads);
            const double* t = find_time(time, prefix + name + suffix);
            const double* ref = find_time(time, prefix + reference + suffix);
            if (!t || !ref) {
                std::printf(" %12s %8s", "-", "-");
                continue;
            }
            std::printf(" %12.3f %7.2fx", *t, *t / *ref);
        }
        std::printf("\n");
    }
}

}  // namespace auxl_bench
