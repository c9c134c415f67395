// auxl/train/callbacks.hpp — ready-made callbacks for trainer::fit.
//
//   progress        a live line on a terminal (epoch, step, ETA, losses, auxiliary weight);
//                   one plain line per epoch when the stream is not a terminal
//   csv_log         one CSV row per epoch: losses per task, auxiliary weights, rule metrics
//                   (e.g. cosine), learning rate, wall time, validation loss and accuracy
//   early_stopping  stops when the validation primary loss has not improved for `patience` epochs
//   time_limit      stops after a wall-clock budget (checked after every step)
//   checkpoint_every  saves the trainer every N epochs (atomically)
// Any type with one of the hooks is a callback (train/concepts.hpp); these are examples of each.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>

#include <unistd.h>

#include "auxl/core/error.hpp"
#include "auxl/io/atomic_write.hpp"
#include "auxl/train/types.hpp"

namespace auxl::train {

/// Progress display.  `terminal` decides between the live line and plain lines; by default it is
/// true when `out` is std::cout or std::cerr attached to a terminal.
class progress {
public:
    explicit progress(std::ostream& out = std::cout, int terminal = -1) : out_(&out) {
        if (terminal >= 0) {
            tty_ = terminal != 0;
        } else {
            tty_ = (&out == &std::cout && ::isatty(STDOUT_FILENO)) || (&out == &std::cerr && ::isatty(STDERR_FILENO));
        }
    }

    void on_fit_begin(const fit_plan& plan) {
        plan_ = plan;
        start_ = std::chrono::steady_clock::now();
        done_at_start_ = plan.first_epoch * plan.steps_per_epoch;
    }

    void on_step_end(const step_report& r) {
        if (!tty_ || !r.main_process) return;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_draw_ < std::chrono::milliseconds(100) && r.step_in_epoch != r.steps_per_epoch) return;
        last_draw_ = now;
        const double elapsed = std::chrono::duration<double>(now - start_).count();
        const double done = double(r.epoch * r.steps_per_epoch + r.step_in_epoch - done_at_start_);
        const double total = double(plan_.epochs * r.steps_per_epoch - done_at_start_);
        const double eta = done > 0 ? elapsed / done * (total - done) : 0.0;
        std::ostringstream line;
        line << '\r' << plan_.method << " epoch " << r.epoch + 1 << '/' << plan_.epochs << " step " << r.step_in_epoch << '/'
             << r.steps_per_epoch << " ETA " << std::fixed << std::setprecision(0) << eta << "s loss" << std::setprecision(4);
        for (double l : r.losses) line << ' ' << l;
        if (!r.aux_weights.empty()) {
            line << " w";
            for (double w : r.aux_weights) line << ' ' << std::setprecision(3) << w;
        }
        line << "   ";
        *out_ << line.str() << std::flush;
    }

    void on_epoch_end(const epoch_report& r) {
        if (!r.main_process) return;
        const auto flags = out_->flags();
        const auto precision = out_->precision();
        if (tty_) *out_ << '\r';
        *out_ << plan_.method << " epoch " << r.epoch << '/' << r.epochs << std::fixed << std::setprecision(4) << " loss";
        for (double l : r.train_loss) *out_ << ' ' << l;
        if (!r.aux_weight.empty()) {
            *out_ << " w";
            for (double w : r.aux_weight) *out_ << ' ' << std::setprecision(3) << w;
        }
        if (r.has_validation) {
            *out_ << std::setprecision(4) << " | val loss " << r.validation.primary_loss() << " acc "
                  << r.validation.primary_accuracy();
        }
        *out_ << std::setprecision(2) << " | " << r.epoch_seconds << "s" << std::endl;
        out_->flags(flags);  // leave the caller's stream as it was
        out_->precision(precision);
    }

private:
    std::ostream* out_;
    bool tty_ = false;
    fit_plan plan_;
    std::chrono::steady_clock::time_point start_{}, last_draw_{};
    std::size_t done_at_start_ = 0;
};

/// Per-epoch CSV log.  The whole file is rewritten atomically after each epoch, so it is always
/// complete and an existing file is replaced only by a longer, valid one.
/// Resuming: when fit() starts at epoch E > 0 (a trainer loaded from a checkpoint) and this log
/// has no rows yet, the header and the rows of epochs 1..E are taken from the file at `path`, so
/// the finished log reads as one run's.  A file without those rows (another run's, or cut short)
/// is an io_error, and is left as it was; no file at all starts a log at epoch E + 1.
class csv_log {
public:
    explicit csv_log(std::filesystem::path path, std::string run_label = {})
        : path_(std::move(path)), label_(std::move(run_label)) {}

    void on_fit_begin(const fit_plan& plan) {
        if (!plan.main_process || plan.first_epoch == 0 || !rows_.empty() || !std::filesystem::exists(path_)) return;
        std::ifstream in(path_);
        std::string header, line, rows;
        if (!in || !std::getline(in, header)) raise<io_error>("auxl::train::csv_log: cannot read ", path_.string(), " to continue it");
        for (std::size_t epoch = 1; epoch <= plan.first_epoch; ++epoch) {
            // Each row starts "<label>,<epoch>,": the row of every epoch before the resumed one.
            const std::string expected = label_ + ',' + std::to_string(epoch) + ',';
            if (!std::getline(in, line) || line.compare(0, expected.size(), expected) != 0) {
                raise<io_error>("auxl::train::csv_log: ", path_.string(), " has no row for epoch ", epoch, " of run '", label_,
                                "': it cannot be the log of the run resumed at epoch ", plan.first_epoch + 1);
            }
            rows += line + '\n';
        }
        header_ = header + '\n';
        rows_ = std::move(rows);
    }

    void on_epoch_end(const epoch_report& r) {
        if (!r.main_process) return;  // data-parallel runs: rank 0 writes the log
        const std::string header = make_header(r);
        if (header_.empty()) header_ = header;
        if (header_ != header) {
            raise<io_error>("auxl::train::csv_log: the rows kept from ", path_.string(), " have the columns\n  ", header_,
                            "but this run writes\n  ", header);
        }
        std::ostringstream row;
        row << std::setprecision(8);
        row << label_ << ',' << r.epoch << ',' << r.step << ',' << r.learning_rate << ',' << r.epoch_seconds << ','
            << r.total_seconds;
        for (double l : r.train_loss) row << ',' << l;
        for (double w : r.aux_weight) row << ',' << w;
        for (double m : r.metric_values) row << ',' << m;
        if (r.has_validation) {
            for (double l : r.validation.loss) row << ',' << l;
            for (double a : r.validation.accuracy) row << ',' << a;
        }
        rows_ += row.str() + "\n";
        io::write_atomically(path_, [&](std::ostream& out) { out << header_ << rows_; });
    }

    const std::filesystem::path& path() const { return path_; }

private:
    static std::string make_header(const epoch_report& r) {
        std::string h = "run,epoch,step,lr,epoch_seconds,total_seconds";
        for (std::size_t k = 0; k < r.train_loss.size(); ++k) h += ",train_loss" + std::to_string(k);
        for (std::size_t k = 0; k < r.aux_weight.size(); ++k) h += ",aux_weight" + std::to_string(k + 1);
        for (const auto& n : r.metric_names) h += "," + n;
        if (r.has_validation) {
            for (std::size_t k = 0; k < r.validation.loss.size(); ++k) h += ",val_loss" + std::to_string(k);
            for (std::size_t k = 0; k < r.validation.accuracy.size(); ++k) h += ",val_accuracy" + std::to_string(k);
        }
        return h + "\n";
    }

    std::filesystem::path path_;
    std::string label_;
    std::string header_;
    std::string rows_;
};

/// Stops when the validation primary loss (training primary loss without validation) has not
/// improved by more than min_delta for `patience` epochs.
class early_stopping {
public:
    explicit early_stopping(std::size_t patience = 5, double min_delta = 0.0) : patience_(patience), min_delta_(min_delta) {}

    bool on_epoch_end(const epoch_report& r) {
        const double monitored = r.has_validation ? r.validation.primary_loss() : r.train_loss.at(0);
        if (monitored < best_ - min_delta_) {
            best_ = monitored;
            best_epoch_ = r.epoch;
            waited_ = 0;
            return false;
        }
        return ++waited_ >= patience_;
    }
    double best() const { return best_; }
    std::size_t best_epoch() const { return best_epoch_; }

private:
    std::size_t patience_;
    double min_delta_;
    double best_ = std::numeric_limits<double>::infinity();
    std::size_t best_epoch_ = 0;
    std::size_t waited_ = 0;
};

/// Stops training once `seconds` of wall time have passed since fit() began.
class time_limit {
public:
    explicit time_limit(double seconds) : seconds_(seconds) {}
    void on_fit_begin(const fit_plan&) { start_ = std::chrono::steady_clock::now(); }
    bool on_step_end(const step_report&) {
        reached_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count() >= seconds_;
        return reached_;
    }
    bool reached() const { return reached_; }

private:
    double seconds_;
    std::chrono::steady_clock::time_point start_{};
    bool reached_ = false;
};

/// Saves the trainer to `path` every `every` epochs (and after the last one).
class checkpoint_every {
public:
    using wants_trainer = void;
    checkpoint_every(std::filesystem::path path, std::size_t every = 1) : path_(std::move(path)), every_(every ? every : 1) {}

    template <class Trainer>
    void on_epoch_end(const epoch_report& r, Trainer& trainer) {
        if (r.epoch % every_ == 0 || r.epoch == r.epochs) trainer.save_checkpoint(path_);
    }

private:
    std::filesystem::path path_;
    std::size_t every_;
};

}  // namespace auxl::train
