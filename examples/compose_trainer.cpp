// compose_trainer — the README's example ("Composing a trainer"), verbatim: one composed trainer,
// trained, evaluated and saved.
#include <auxl/auxl.hpp>
using namespace auxl;

using trunk = nn::sequential<nn::input<1, 28, 28>, nn::flatten,
                             nn::dense<256>, nn::relu, nn::dense<128>, nn::relu>;
using model = nn::multi_task<trunk, nn::head<nn::dense<2>>,    // primary: half2
                                    nn::head<nn::dense<10>>>;  // auxiliary: the fine classes
using gcs_trainer = trainer<model, gen::human_hierarchy, weight::cosine, optim::sgd<float>>;

int main() {
    auto fm = data::load_fashion_mnist();
    rng pick(1, "subset");
    auto train_set = data::stratified_subset(fm.train, 1000, pick);

    gcs_trainer t(data::hierarchy::fashion_half2(), gen::human_hierarchy{}, weight::cosine{1.0},
                  optim::sgd<float>({.learning_rate = 0.05, .momentum = 0.9, .weight_decay = 5e-4}),
                  {.seed = 1, .batch_size = 128, .schedule = optim::cosine_lr{20}});
    t.fit(train_set, {.epochs = 20, .validation = &fm.test},
          train::progress{}, train::csv_log{"run.csv"});

    std::cout << "test accuracy " << t.evaluate(fm.test).primary_accuracy() << "\n";
    t.save_checkpoint("run.ckpt");   // t.load_checkpoint("run.ckpt") resumes bit for bit
}
