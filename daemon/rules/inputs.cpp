#include "rules/inputs.hpp"

#include "yaml/services.hpp"

#include <array>
#include <filesystem>
#include <set>

namespace runbookd::rules::inputs {
namespace {

constexpr std::array<std::string_view, 6> signal_keys{"at", "kind", "subject", "labels", "value", "source"};

}  // namespace

std::optional<signal> read_signal(yaml::walker& w, const yaml::entry& e, wall_time start) {
    const auto keys = w.map(e.value, e.path, signal_keys);
    if (!keys) {
        return std::nullopt;
    }
    const std::size_t before = w.problem_count();
    signal s;
    s.source = "replay";  // labels the file leaves out stay "", as a real source leaves them
    s.at = start;
    const signal_kind* kind = nullptr;
    if (const auto* k = yaml::find(*keys, "kind")) {
        if (auto name = w.string(*k)) {
            if (!s.set_kind(*name)) {
                w.report(*k, "unknown signal kind '" + *name + "' (docs/signals.md)");
            }
            kind = s.info;
        }
    } else {
        w.report(e.value.Mark(), e.path + ".kind", "required: the signal's kind, e.g. k8s.rollout");
    }
    if (const auto* a = yaml::find(*keys, "at")) {
        if (auto d = w.duration(*a, true)) {
            s.at = start + *d;
        }
    }
    if (const auto* sub = yaml::find(*keys, "subject")) {
        if (auto v = w.string(*sub)) {
            s.subject = *v;
        }
    }
    if (const auto* v = yaml::find(*keys, "value")) {
        s.value = w.number(*v, -1e18, 1e18);
    }
    if (const auto* src = yaml::find(*keys, "source")) {
        if (auto v = w.string(*src)) {
            s.source = *v;
        }
    }
    if (const auto* l = yaml::find(*keys, "labels"); l != nullptr && kind != nullptr) {
        if (auto m = w.map(l->value, l->path, {})) {
            for (const auto& lab : *m) {
                if (std::find(kind->labels.begin(), kind->labels.end(), lab.name) == kind->labels.end()) {
                    w.report(lab.key.Mark(), lab.path, "'" + s.kind + "' has no label '" + lab.name + "'");
                    continue;
                }
                if (auto v = w.string(lab, false)) {
                    s.set(lab.name, *v);
                }
            }
        }
    }
    if (kind != nullptr) {
        if (s.subject.empty()) {
            // The natural subject of most kinds is their first label's value (the deployment,
            // the pid, the instance).
            const std::string* first = s.find(
                kind->labels.size() > 1 && kind->labels[0] == "namespace" ? kind->labels[1] : kind->labels[0]
            );
            s.subject = first == nullptr ? std::string{} : *first;
        }
    }
    return w.problem_count() == before ? std::optional{std::move(s)} : std::nullopt;
}

std::optional<source_map> read_sources(yaml::walker& w, const yaml::entry* e, wall_time start) {
    source_map out;
    if (e == nullptr) {
        for (const auto& k : signal_catalogue()) {
            out.try_emplace(std::string{k.source}, source_status{source_state::healthy, {}, start});
        }
        return out;
    }
    std::set<std::string_view> known;
    for (const auto& k : signal_catalogue()) {
        known.insert(k.source);
    }
    const std::vector<std::string_view> names(known.begin(), known.end());
    const auto m = w.map(e->value, e->path, names);
    if (!m) {
        return std::nullopt;
    }
    for (const auto& s : *m) {
        auto v = w.string(s);
        if (!v) {
            continue;
        }
        if (*v == "healthy") {
            out.emplace(s.name, source_status{source_state::healthy, {}, start});
        } else if (v->starts_with("failing")) {
            std::string why = v->substr(7);
            while (!why.empty() && (why.front() == ':' || why.front() == ' ')) {
                why.erase(0, 1);
            }
            out.emplace(s.name, source_status{source_state::failing, why, start});
        } else if (*v != "not_configured") {
            w.report(s, "'" + *v + "' is not healthy, not_configured or 'failing: reason'");
        }
    }
    return out;
}

std::optional<std::map<std::string, service_info, std::less<>>> read_services(
    yaml::walker& w, const yaml::entry& e
) {
    // The configuration's own reader, without ${VAR}: a scenario accepts what check-config does.
    const std::size_t before = w.problem_count();
    auto out = yaml::read_services(yaml::make_section(w, nullptr, e.value, e.key.Mark(), e.path));
    if (w.problem_count() != before) {
        return std::nullopt;
    }
    return out;
}

std::optional<std::vector<std::string>> read_rule_files(yaml::walker& w, const yaml::entry* e) {
    std::vector<std::string> out;
    if (e == nullptr) {
        return out;
    }
    const auto items = w.list(*e);
    if (!items) {
        return std::nullopt;
    }
    const auto base = std::filesystem::path{w.file()}.parent_path();
    for (const auto& item : *items) {
        if (auto v = w.string(item)) {
            const std::filesystem::path p{*v};
            out.push_back(p.is_absolute() ? p.string() : (base / p).lexically_normal().string());
        }
    }
    return out;
}

}  // namespace runbookd::rules::inputs
