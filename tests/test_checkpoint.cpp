// Checkpoints: round trip, bit-exact resume mid-epoch, and clear failures (another
// composition, a corrupt or truncated file) that leave both the file and the trainer untouched.
#include <doctest/doctest.h>

#include <csignal>
#include <cstring>
#include <sys/resource.h>
#include <fstream>
#include <zlib.h>
#include <sstream>
#include <string>
#include <vector>

#include "auxl/auxl.hpp"
#include "auxl/gen/human_hierarchy.hpp"
#include "auxl/gen/none.hpp"
#include "auxl/train/callbacks.hpp"
#include "auxl/train/trainer.hpp"
#include "auxl/weight/cosine.hpp"
#include "auxl/weight/equal.hpp"
#include "synthetic.hpp"
#include "temp_dir.hpp"

using namespace auxl;

namespace {
using trunk = nn::sequential<nn::input<20>, nn::dense<24>, nn::relu, nn::dropout<1, 5>, nn::dense<16>, nn::relu>;
using model_type = nn::multi_task<trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>>;
using other_model = nn::multi_task<trunk, nn::head<nn::dense<2>>, nn::head<nn::dense<10>>, nn::head<nn::dense<10>>>;
const data::hierarchy parity = data::hierarchy::fashion_parity2();

template <class Trainer>
std::unique_ptr<Trainer> make(std::uint64_t seed, auto rule, auto optimizer) {
    trainer_options o;
    o.seed = seed;
    o.batch_size = 16;
    o.schedule = optim::cosine_lr{6, 0.001};
    return std::make_unique<Trainer>(parity, gen::human_hierarchy{}, rule, optimizer, o);
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct stop_at {
    std::size_t step;
    bool on_step_end(const train::step_report& r) { return r.step == step; }
};

template <class Trainer, class Rule, class Opt>
void check_resume(Rule rule, Opt opt) {
    const auto data = testing::blobs(88, 3);  // 6 batches per epoch, the last one short
    testing::temp_dir dir;
    auto straight = make<Trainer>(21, rule, opt);
    straight->fit(data, {.epochs = 4});

    for (std::size_t kill_step : {1u, 7u, 12u, 17u}) {
        CAPTURE(kill_step);
        auto first = make<Trainer>(21, rule, opt);
        first->fit(data, {.epochs = 4}, stop_at{kill_step});
        REQUIRE(first->steps_done() == kill_step);
        first->save_checkpoint(dir / "run.ckpt");
        auto resumed = make<Trainer>(99, rule, opt);  // another seed: everything must come from the file
        resumed->load_checkpoint(dir / "run.ckpt");
        CHECK(resumed->steps_done() == kill_step);
        resumed->fit(data, {.epochs = 4});
        CHECK(resumed->steps_done() == straight->steps_done());
        CHECK(std::memcmp(resumed->model().parameters().data(), straight->model().parameters().data(),
                          model_type::parameter_count * sizeof(float)) == 0);
    }
}
}  // namespace

TEST_CASE("resuming from a checkpoint taken mid-run gives bit-identical parameters (SGD momentum, equal)") {
    using T = trainer<model_type, gen::human_hierarchy, weight::equal, optim::sgd<float>>;
    check_resume<T>(weight::equal{}, optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9, .weight_decay = 5e-4}));
}

TEST_CASE("resuming is bit-identical with Adam and the cosine rule") {
    using T = trainer<model_type, gen::human_hierarchy, weight::cosine, optim::adam<float>>;
    check_resume<T>(weight::cosine{}, optim::adam<float>({.learning_rate = 0.01}));
}

TEST_CASE("a checkpoint of another composition is refused with both descriptions, and nothing changes") {
    const auto data = testing::blobs(32, 4);
    testing::temp_dir dir;
    using equal_t = trainer<model_type, gen::human_hierarchy, weight::equal, optim::sgd<float>>;
    using cosine_t = trainer<model_type, gen::human_hierarchy, weight::cosine, optim::sgd<float>>;
    auto a = make<equal_t>(1, weight::equal{}, optim::sgd<float>{});
    a->fit(data, {.epochs = 1});
    a->save_checkpoint(dir / "equal.ckpt");
    const std::string bytes = read_file(dir / "equal.ckpt");

    auto b = make<cosine_t>(2, weight::cosine{}, optim::sgd<float>{});
    const auto before = b->model().parameters();
    CHECK_THROWS_WITH_AS(b->load_checkpoint(dir / "equal.ckpt"), doctest::Contains("written by another composition"), io_error);
    CHECK_THROWS_WITH_AS(b->load_checkpoint(dir / "equal.ckpt"), doctest::Contains("human+equal"), io_error);
    CHECK(std::equal(before.begin(), before.end(), b->model().parameters().begin()));
    CHECK(read_file(dir / "equal.ckpt") == bytes);

    trainer_options o;
    trainer<other_model, gen::none, weight::equal, optim::sgd<float>> c(parity, {}, {}, {}, o);
    CHECK_THROWS_AS(c.load_checkpoint(dir / "equal.ckpt"), io_error);
}

TEST_CASE("corrupt, truncated and foreign checkpoint files are refused with a clear error") {
    const auto data = testing::blobs(32, 4);
    testing::temp_dir dir;
    using T = trainer<model_type, gen::human_hierarchy, weight::equal, optim::sgd<float>>;
    auto a = make<T>(1, weight::equal{}, optim::sgd<float>({.learning_rate = 0.01, .momentum = 0.9}));
    a->fit(data, {.epochs = 1});
    a->save_checkpoint(dir / "good.ckpt");
    const std::string good = read_file(dir / "good.ckpt");
    // The trailer is zlib's CRC-32 of every byte before it, so outside tools can verify a file.
    std::uint32_t trailer;
    std::memcpy(&trailer, good.data() + good.size() - 4, 4);
    CHECK(trailer == crc32(0L, reinterpret_cast<const Bytef*>(good.data()), static_cast<uInt>(good.size() - 4)));
    auto fresh = make<T>(5, weight::equal{}, optim::sgd<float>({.learning_rate = 0.01, .momentum = 0.9}));
    const auto before = fresh->model().parameters();
    struct bad_case {
        const char* what;
        std::string bytes;
        const char* message;
    };
    std::string flipped = good;
    flipped[flipped.size() / 2] ^= 0x40;
    const std::vector<bad_case> cases = {
        {"empty", "", "field size"},
        {"foreign", std::string(100, 'x'), "field magic: expected AUXLCKPT"},
        {"flipped byte", flipped, "crc32"},
        {"truncated", good.substr(0, good.size() / 2), "crc32"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        {
            std::ofstream out(dir / "bad.ckpt", std::ios::binary);
            out.write(c.bytes.data(), std::streamsize(c.bytes.size()));
        }
        CHECK_THROWS_WITH_AS(fresh->load_checkpoint(dir / "bad.ckpt"), doctest::Contains(c.message), io_error);
        CHECK(read_file(dir / "bad.ckpt") == c.bytes);
    }
    CHECK(std::equal(before.begin(), before.end(), fresh->model().parameters().begin()));
    CHECK_THROWS_WITH_AS(fresh->load_checkpoint(dir / "missing.ckpt"), doctest::Contains("cannot open checkpoint"), io_error);
}

TEST_CASE("saving over an existing checkpoint into an unwritable place keeps the old one") {
    const auto data = testing::blobs(32, 4);
    testing::temp_dir dir;
    using T = trainer<model_type, gen::human_hierarchy, weight::equal, optim::sgd<float>>;
    auto a = make<T>(1, weight::equal{}, optim::sgd<float>{});
    a->fit(data, {.epochs = 1});
    CHECK_THROWS_WITH_AS(a->save_checkpoint(dir / "no-such-dir" / "x.ckpt"), doctest::Contains("cannot open"), io_error);
    train::checkpoint_every every(dir / "every.ckpt", 1);
    a->fit(data, {.epochs = 3}, every);
    CHECK(std::filesystem::exists(dir / "every.ckpt"));
    auto b = make<T>(2, weight::equal{}, optim::sgd<float>{});
    b->load_checkpoint(dir / "every.ckpt");
    CHECK(b->epochs_done() == 3);
}

TEST_CASE("a checkpoint write that runs out of space fails clearly and keeps the previous checkpoint") {
    // A file-size limit (RLIMIT_FSIZE) makes the kernel refuse writes past it, as a full disk does,
    // without needing a small file system: the write fails with EFBIG (SIGXFSZ ignored).
    const auto data = testing::blobs(32, 4);
    testing::temp_dir dir;
    using T = trainer<model_type, gen::human_hierarchy, weight::equal, optim::sgd<float>>;
    auto a = make<T>(1, weight::equal{}, optim::sgd<float>{});
    a->fit(data, {.epochs = 1});
    a->save_checkpoint(dir / "run.ckpt");
    std::ifstream first(dir / "run.ckpt", std::ios::binary);
    const std::string before((std::istreambuf_iterator<char>(first)), std::istreambuf_iterator<char>());
    first.close();
    REQUIRE(before.size() > 1024);

    a->fit(data, {.epochs = 2});
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    const auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit tight = old;
    tight.rlim_cur = 1024;  // far smaller than a checkpoint
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &tight) == 0);
    bool threw = false;
    std::string message;
    try {
        a->save_checkpoint(dir / "run.ckpt");
    } catch (const io_error& e) {
        threw = true;
        message = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, previous_handler);
    CHECK(threw);
    CHECK(message.find("failed (disk full?)") != std::string::npos);
    CHECK(message.find("is unchanged") != std::string::npos);
    std::ifstream again(dir / "run.ckpt", std::ios::binary);
    const std::string after((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
    CHECK(after == before);  // the previous checkpoint is intact ...
    std::size_t leftovers = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) leftovers += entry.path().filename() != "run.ckpt";
    CHECK(leftovers == 0);  // ... and no temporary file is left behind
    auto b = make<T>(2, weight::equal{}, optim::sgd<float>{});
    b->load_checkpoint(dir / "run.ckpt");
    CHECK(b->epochs_done() == 1);
}

TEST_CASE("a checkpoint path whose directory is a file is refused without touching anything") {
    const auto data = testing::blobs(32, 4);
    testing::temp_dir dir;
    using T = trainer<model_type, gen::human_hierarchy, weight::equal, optim::sgd<float>>;
    auto a = make<T>(1, weight::equal{}, optim::sgd<float>{});
    a->fit(data, {.epochs = 1});
    std::ofstream(dir / "plain-file") << "not a directory";
    CHECK_THROWS_WITH_AS(a->save_checkpoint(dir / "plain-file" / "x.ckpt"), doctest::Contains("cannot open"), io_error);
    std::ifstream still(dir / "plain-file");
    std::string text;
    std::getline(still, text);
    CHECK(text == "not a directory");
}

TEST_CASE("a resumed run keeps its training time and continues its CSV log as one run's") {
    const auto data = testing::blobs(88, 3);  // 6 batches per epoch
    const auto val = testing::blobs(32, 4);
    testing::temp_dir dir;
    using T = trainer<model_type, gen::human_hierarchy, weight::equal, optim::sgd<float>>;
    const auto sgd = optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9});
    T::fit_options fit;
    fit.epochs = 4;
    fit.validation = &val;

    auto straight = make<T>(21, weight::equal{}, sgd);
    train::csv_log straight_log(dir / "straight.csv", "run");
    straight->fit(data, fit, straight_log);

    // The first process: two epochs, a checkpoint after each, then part of the third epoch.
    auto first = make<T>(21, weight::equal{}, sgd);
    train::csv_log first_log(dir / "resumed.csv", "run");
    train::checkpoint_every every(dir / "run.ckpt");
    T::fit_options two = fit;
    two.epochs = 2;
    first->fit(data, two, first_log, every);
    first->fit(data, fit, stop_at{15});  // no log, no checkpoint: this work is lost, as in a kill
    const double seconds_at_checkpoint = [&] {
        auto probe = make<T>(5, weight::equal{}, sgd);
        probe->load_checkpoint(dir / "run.ckpt");
        return probe->training_seconds();
    }();
    CHECK(seconds_at_checkpoint > 0);
    CHECK(seconds_at_checkpoint < first->training_seconds());

    // The second process resumes from the epoch-2 checkpoint with a fresh log object.
    auto resumed = make<T>(99, weight::equal{}, sgd);
    resumed->load_checkpoint(dir / "run.ckpt");
    CHECK(resumed->training_seconds() == seconds_at_checkpoint);
    train::csv_log resumed_log(dir / "resumed.csv", "run");
    resumed->fit(data, fit, resumed_log);
    CHECK(resumed->training_seconds() > seconds_at_checkpoint);
    CHECK(std::memcmp(resumed->model().parameters().data(), straight->model().parameters().data(),
                      model_type::parameter_count * sizeof(float)) == 0);

    // Both logs: the same header and four rows; every column but the times is identical.
    auto rows_without_times = [](const std::filesystem::path& p) {
        std::ifstream in(p);
        std::vector<std::string> rows;
        for (std::string line; std::getline(in, line);) {
            std::vector<std::string> fields;
            std::stringstream split(line);
            for (std::string f; std::getline(split, f, ',');) fields.push_back(f);
            if (fields.size() > 5) fields.erase(fields.begin() + 4, fields.begin() + 6);  // epoch_seconds, total_seconds
            std::string joined;
            for (const auto& f : fields) joined += f + ',';
            rows.push_back(joined);
        }
        return rows;
    };
    const auto a = rows_without_times(dir / "straight.csv"), b = rows_without_times(dir / "resumed.csv");
    CHECK(a.size() == 5);
    CHECK(a == b);

    // A log that lacks the resumed run's earlier rows is refused and left as it was.
    std::ofstream(dir / "foreign.csv") << "run,epoch\nother,1,6\n";
    auto again = make<T>(99, weight::equal{}, sgd);
    again->load_checkpoint(dir / "run.ckpt");
    train::csv_log foreign(dir / "foreign.csv", "run");
    CHECK_THROWS_WITH_AS(again->fit(data, fit, foreign), doctest::Contains("has no row for epoch 1 of run 'run'"), io_error);
    CHECK(read_file(dir / "foreign.csv") == "run,epoch\nother,1,6\n");
}
