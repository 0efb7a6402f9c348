#include "app/cli/commands.hpp"

#include "app/daemon.hpp"
#include "config/config.hpp"
#include "core/version.hpp"
#include "log/log.hpp"
#include "rules/rule_test.hpp"
#include "rules/rules.hpp"
#include "rules/scenario.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

namespace runbookd::app::cli {

int run(const std::string& config_path) {
    auto sink = std::make_shared<log::sink>(stdout);
    const log::logger boot{sink, log::level::info};
    auto loaded = config::load(config_path);
    if (!loaded.ok()) {
        for (const auto& p : loaded.problems) {
            boot.error("invalid config", {{"problem", p.to_string()}});
        }
        return exit_invalid_config;
    }
    auto rules = rules::load(loaded.value->rules.files, loaded.value->rules.tuning);
    if (!rules.ok()) {
        for (const auto& p : rules.problems) {
            boot.error("invalid rules", {{"problem", p.to_string()}});
        }
        return exit_invalid_config;
    }
    boost::asio::io_context ioc{1};
    // Log lines written during one loop iteration leave in one write(2).
    sink->batch_with([&ioc](std::function<void()> flush) { boost::asio::post(ioc, std::move(flush)); });
    int code = exit_ok;
    try {
        daemon d{ioc, std::move(*loaded.value), std::move(rules.value), sink};
        d.start();
        ioc.run();
    } catch (const std::exception& e) {
        sink->batch_with({});
        boot.error("daemon failed", {{"error", e.what()}});
        code = exit_runtime;
    }
    sink->batch_with({});
    sink->flush();
    return code;
}

namespace {

void print_problems(const std::vector<problem>& problems, const std::string& what, std::ostream& err) {
    for (const auto& p : problems) {
        err << p.to_string() << '\n';
    }
    err << problems.size() << (problems.size() == 1 ? " problem" : " problems") << " in " << what << '\n';
}

std::string offset_text(millis d) {
    const bool negative = d.count() < 0;
    const long long s = std::chrono::duration_cast<std::chrono::seconds>(negative ? -d : d).count();
    char buf[32];
    std::snprintf(
        buf, sizeof buf, "T%c%02lld:%02lld:%02lld", negative ? '-' : '+', s / 3600, (s % 3600) / 60, s % 60
    );
    return buf;
}

std::string indent(const std::string& text) {
    std::string out = "    ";
    for (const char c : text) {
        out += c;
        if (c == '\n') {
            out += "    ";
        }
    }
    return out;
}

}  // namespace

int check_config(const std::string& path, std::ostream& out, std::ostream& err) {
    const auto loaded = config::load(path);
    if (!loaded.ok()) {
        print_problems(loaded.problems, path, err);
        return exit_invalid_config;
    }
    const auto rules = rules::load(loaded.value->rules.files, loaded.value->rules.tuning);
    if (!rules.ok()) {
        print_problems(rules.problems, "the rules of " + path, err);
        return exit_invalid_config;
    }
    out << path << ": ok (" << loaded.value->services.size() << " services, " << rules.value->rules.size()
        << " rules from " << rules.value->origin << ", sha256 " << loaded.value->hash.substr(0, 12) << ")\n";
    return exit_ok;
}

int test_rules(const std::vector<std::string>& files, std::ostream& out, std::ostream& err) {
    const auto sum = rules::run_rule_tests(files, out, err);
    return sum.failed == 0 && sum.passed > 0 ? exit_ok : exit_invalid_config;
}

int replay(
    const std::string& scenario_path, const std::string& format, std::ostream& out, std::ostream& err
) {
    const auto loaded = rules::load_scenario(scenario_path);
    if (!loaded.value) {
        print_problems(loaded.problems, scenario_path, err);
        return exit_invalid_config;
    }
    const auto& sc = *loaded.value;
    const auto rules = rules::load(sc.rule_files);
    if (!rules.ok()) {
        print_problems(rules.problems, "the rules of " + scenario_path, err);
        return exit_invalid_config;
    }
    if (const auto unknown = rules::unknown_rule_ids(sc, *rules.value); !unknown.empty()) {
        print_problems(unknown, scenario_path, err);
        return exit_invalid_config;
    }
    const auto result = rules::replay(sc, rules.value);
    if (format == "json") {
        for (const auto& r : result.posts) {
            nlohmann::json j{
                {"at", format_rfc3339(r.at)},
                {"offset_seconds", std::chrono::duration<double>(r.at - sc.start).count()},
                {"channel", to_string(r.p.to)},
                {"kind", to_string(r.p.kind)},
                {"key", r.p.key},
                {"edit_of", r.p.edit_of},
                {"incident", r.p.incident_id},
                {"title", r.p.text.title},
                {"body", r.p.text.body},
                {"footer", r.p.text.footer},
                {"url", r.p.text.url},
            };
            out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
        }
    } else {
        out << "replay: " << (sc.name.empty() ? scenario_path : sc.name) << " (T0 "
            << format_rfc3339(sc.start) << ", rules: " << rules.value->origin << ")\n\n";
        for (const auto& r : result.posts) {
            out << offset_text(r.at - sc.start) << "  #" << to_string(r.p.to) << "  " << to_string(r.p.kind)
                << "  " << r.p.key << (r.p.edit_of.empty() ? "" : "  (edits " + r.p.edit_of + ")") << '\n';
            out << indent(r.p.text.title) << '\n' << indent(r.p.text.body) << '\n';
            if (!r.p.text.footer.empty()) {
                out << indent(r.p.text.footer) << '\n';
            }
            out << '\n';
        }
    }
    if (!result.misses.empty()) {
        err << "replay: " << scenario_path << ": expectations not met:\n";
        for (const auto& m : result.misses) {
            err << "  " << m << '\n';
        }
        return exit_invalid_config;
    }
    if (sc.expect) {
        err << "replay: " << scenario_path << ": every expectation met\n";
    }
    return exit_ok;
}

namespace {

std::vector<std::string> scenario_files(const std::string& dir, std::ostream& err) {
    std::vector<std::string> files;
    std::error_code ec;
    for (std::filesystem::directory_iterator it{dir, ec}, end; !ec && it != end; it.increment(ec)) {
        const auto& p = it->path();
        if (p.extension() == ".yaml" && it->is_regular_file(ec)) {
            files.push_back(p.string());
        }
    }
    if (ec) {
        err << dir << ": cannot read the directory: " << ec.message() << '\n';
        return {};
    }
    if (files.empty()) {
        err << dir << ": no scenario files (*.yaml)\n";
    }
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace

int replay_score(const std::string& dir, std::ostream& out, std::ostream& err) {
    const auto files = scenario_files(dir, err);
    if (files.empty()) {
        return exit_invalid_config;
    }
    // Most scenarios use the embedded pack: each set of rule files is loaded once.
    std::map<std::vector<std::string>, rules::load_result> loaded_rules;
    std::vector<rules::scenario_score> scored;
    std::vector<std::string> unscored;
    std::size_t invalid = 0;
    for (const auto& file : files) {
        const auto loaded = rules::load_scenario(file);
        if (!loaded.value) {
            print_problems(loaded.problems, file, err);
            ++invalid;
            continue;
        }
        const auto& sc = *loaded.value;
        auto it = loaded_rules.find(sc.rule_files);
        if (it == loaded_rules.end()) {
            it = loaded_rules.emplace(sc.rule_files, rules::load(sc.rule_files)).first;
        }
        const auto& rules = it->second;
        if (!rules.ok()) {
            print_problems(rules.problems, "the rules of " + file, err);
            ++invalid;
            continue;
        }
        if (const auto unknown = rules::unknown_rule_ids(sc, *rules.value); !unknown.empty()) {
            print_problems(unknown, file, err);
            ++invalid;
            continue;
        }
        if (!sc.expect || !sc.expect->top) {
            unscored.push_back(file);
            continue;
        }
        scored.push_back(rules::judge(sc, rules::replay(sc, rules.value)));
    }
    const auto score = rules::tally(std::move(scored));
    out << "score: " << dir << " (" << score.scenarios.size() << " scenarios scored)\n\n";
    for (const auto& f : unscored) {
        out << "skip  " << f << ": no expect.top, not scored\n";
    }
    rules::write_score(score, out);
    if (invalid > 0) {
        err << "replay --score: " << invalid << (invalid == 1 ? " scenario" : " scenarios")
            << " could not be replayed\n";
    }
    const bool all_first = score.top1 == score.scenarios.size();
    return invalid == 0 && !score.scenarios.empty() && all_first ? exit_ok : exit_invalid_config;
}

int version(std::ostream& out) {
    out << "runbookd " << runbookd::version() << " (" << runbookd::revision() << ")\n";
    return exit_ok;
}

}  // namespace runbookd::app::cli
