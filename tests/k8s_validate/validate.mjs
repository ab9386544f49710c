// Validate Prometheus Operator objects (JSON array on stdin) with the CRD schemas compiled by
// kubernetes-models; print one JSON list of error messages per object (empty: valid).
import * as v1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map((doc) => {
  const Model = v1[doc.kind];
  if (doc.apiVersion !== "monitoring.coreos.com/v1" || !Model) return [`not a monitoring.coreos.com/v1 kind: ${doc.kind}`];
  try {
    new Model(doc).validate();
    return [];
  } catch (error) {
    return (error.errors ?? [{ instancePath: "", message: String(error.message) }]).map(
      (e) => `${e.instancePath || "/"}: ${e.message}`,
    );
  }
});
process.stdout.write(JSON.stringify(results));
