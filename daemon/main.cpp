// runbookd: the on-call engineer's first five minutes, as a daemon.
// main() only parses the command line and returns the command's exit code.

#include "app/cli/commands.hpp"

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    using namespace runbookd::app::cli;
    CLI::App app{"runbookd: incident response for Kubernetes teams on Discord"};
    app.require_subcommand(1);

    std::string config_path;
    auto* run_cmd = app.add_subcommand("run", "Run the daemon");
    run_cmd->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();

    std::string check_path;
    auto* check_cmd =
        app.add_subcommand("check-config", "Validate a configuration file; exit 1 when invalid");
    check_cmd->add_option("file", check_path, "Configuration file (YAML)")->required();

    std::vector<std::string> test_files;
    auto* test_cmd = app.add_subcommand("test-rules", "Run rule unit tests (YAML); exit 1 when any fails");
    test_cmd->add_option("files", test_files, "Rule test files")->required();

    std::string scenario_path;
    std::string score_dir;
    std::string format = "text";
    auto* replay_cmd = app.add_subcommand(
        "replay",
        "Run a scenario through the engine under virtual time; print every post. With --score DIR, "
        "score the diagnoses of every scenario in DIR; exit 1 when any expected top cause is not first"
    );
    auto* scenario_opt = replay_cmd->add_option("scenario", scenario_path, "Scenario file (YAML)");
    auto* score_opt = replay_cmd->add_option("--score", score_dir, "Directory of scenarios to score");
    auto* format_opt =
        replay_cmd->add_option("--format", format, "text or json")->check(CLI::IsMember({"text", "json"}));
    score_opt->excludes(scenario_opt)->excludes(format_opt);
    replay_cmd->require_option(1, 2);

    auto* version_cmd = app.add_subcommand("version", "Print the version");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return exit_usage;
    }
    if (run_cmd->parsed()) {
        return run(config_path);
    }
    if (check_cmd->parsed()) {
        return check_config(check_path, std::cout, std::cerr);
    }
    if (test_cmd->parsed()) {
        return test_rules(test_files, std::cout, std::cerr);
    }
    if (replay_cmd->parsed()) {
        if (score_opt->count() > 0) {
            return replay_score(score_dir, std::cout, std::cerr);
        }
        if (scenario_opt->count() == 0) {
            std::cerr << "replay: a scenario file, or --score DIR, is required\n";
            return exit_usage;
        }
        return replay(scenario_path, format, std::cout, std::cerr);
    }
    if (version_cmd->parsed()) {
        return version(std::cout);
    }
    return exit_usage;
}
