#pragma once
// The one metric every webhook intake counts its requests in (docs/metrics.md).

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

namespace runbookd::intake {

/// `runbookd_webhooks_total{source,result}`: registered by each webhook intake under one
/// name and help, so that they share the family (the registry refuses a second help).
inline prometheus::Family<prometheus::Counter>& webhook_results(prometheus::Registry& metrics) {
    return prometheus::BuildCounter()
        .Name("runbookd_webhooks_total")
        .Help("Webhooks received, by source and result.")
        .Register(metrics);
}

}  // namespace runbookd::intake
