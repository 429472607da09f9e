// The Helm chart (charts/cachegate), rendered as `helm template` renders it: Go's text/template
// with the sprig functions and helm's own (tools/chart_render, built from Debian's Go packages).
// For each mode and example the rendered manifests must parse as YAML, hold the expected objects
// with probes, security settings and drain timing, and carry a configuration that
// `cachegate --check-config` accepts, with the files the pod would mount put in place.
// yamllint checks the chart's own YAML.

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_material.h"

namespace cachegate {
namespace {

const std::string kChart = std::string(CACHEGATE_SOURCE_DIR) + "/charts/cachegate";

struct Rendered {
  int rc = -1;
  std::string text;
  std::vector<YAML::Node> objects;  // every non-empty document
  // The first object of `kind`; a null node when there is none.
  YAML::Node find(const std::string& kind) const {
    for (const auto& o : objects)
      if (o["kind"].as<std::string>() == kind) return o;
    return YAML::Node();
  }
  // The kinds of the objects, sorted.
  std::vector<std::string> kinds() const {
    std::vector<std::string> out;
    for (const auto& o : objects)
      out.push_back(o["kind"].as<std::string>());
    std::sort(out.begin(), out.end());
    return out;
  }
};

Rendered render(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {CHART_RENDER_BINARY, "--release", "cache", "--namespace",
                                   "caching"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(kChart);
  Rendered r;
  r.rc = testing::run_command(argv, &r.text);
  if (r.rc != 0) return r;
  for (const YAML::Node& doc : YAML::LoadAll(r.text))
    if (doc.IsMap()) r.objects.push_back(doc);
  return r;
}

// The container named cachegate in a pod spec.
YAML::Node cachegate_container(const YAML::Node& pod_spec) {
  for (const auto& c : pod_spec["containers"])
    if (c["name"].as<std::string>() == "cachegate") return c;
  return YAML::Node();
}

// The configuration the ConfigMap carries, checked by `cachegate --check-config` with the files
// it names made where the pod would have them (below `root` instead of /).
std::string check_config(const Rendered& r, const testing::TempDir& root) {
  std::string config = r.find("ConfigMap")["data"]["cachegate.yaml"].as<std::string>();
  for (size_t at = 0; (at = config.find("/etc/cachegate/", at)) != std::string::npos;) {
    config.insert(at, root.path());
    at += root.path().size() + 15;
  }
  const std::string path = root.write_file("cachegate.yaml", config);
  std::string out;
  const int rc = testing::run_command({CACHEGATE_BINARY, "--check-config", path}, &out);
  return rc == 0 ? "" : "exit " + std::to_string(rc) + ": " + out;
}

void put_file(const testing::TempDir& root, const std::string& path, const std::string& content) {
  REQUIRE(testing::run_command({"mkdir", "-p", root.path() + path.substr(0, path.rfind('/'))},
                               nullptr) == 0);
  std::ofstream(root.path() + path) << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_CASE(
    "chart: the standalone defaults are a Deployment behind a Service, probed and locked down",
    "[chart]") {
  const Rendered r = render({});
  REQUIRE(r.rc == 0);
  CHECK(r.kinds() ==
        std::vector<std::string>{"ConfigMap", "Deployment", "PodDisruptionBudget", "Service"});
  const YAML::Node deployment = r.find("Deployment");
  CHECK(deployment["metadata"]["name"].as<std::string>() == "cache-cachegate");
  CHECK(deployment["spec"]["replicas"].as<int>() == 2);
  const YAML::Node pod = deployment["spec"]["template"];
  const YAML::Node spec = pod["spec"];
  // preStop 5 s + drain_timeout 15 s + 5 s.
  CHECK(spec["terminationGracePeriodSeconds"].as<int>() == 25);
  CHECK(spec["securityContext"]["runAsNonRoot"].as<bool>());
  CHECK(spec["securityContext"]["runAsUser"].as<int>() == 10001);
  const YAML::Node c = cachegate_container(spec);
  REQUIRE(c);
  CHECK(c["image"].as<std::string>() == "cachegate:0.1.0");
  CHECK(c["livenessProbe"]["httpGet"]["path"].as<std::string>() == "/healthz");
  CHECK(c["readinessProbe"]["httpGet"]["path"].as<std::string>() == "/readyz");
  CHECK(c["readinessProbe"]["httpGet"]["port"].as<std::string>() == "admin");
  CHECK(c["lifecycle"]["preStop"]["exec"]["command"][1].as<std::string>() == "5");
  CHECK(c["securityContext"]["readOnlyRootFilesystem"].as<bool>());
  CHECK_FALSE(c["securityContext"]["allowPrivilegeEscalation"].as<bool>());
  CHECK(c["securityContext"]["capabilities"]["drop"][0].as<std::string>() == "ALL");
  CHECK(c["ports"][0]["containerPort"].as<int>() == 11211);
  CHECK(c["ports"][1]["name"].as<std::string>() == "admin");
  CHECK(c["ports"][1]["containerPort"].as<int>() == 9090);
  // Scraped, and rolled when the configuration changes.
  const YAML::Node annotations = pod["metadata"]["annotations"];
  CHECK(annotations["prometheus.io/scrape"].as<std::string>() == "true");
  CHECK(annotations["prometheus.io/port"].as<std::string>() == "9090");
  CHECK(annotations["checksum/config"].as<std::string>().size() == 64);
  // The Service and the budget select the pods.
  const YAML::Node service = r.find("Service");
  CHECK(service["spec"]["ports"][0]["port"].as<int>() == 11211);
  CHECK(service["spec"]["ports"][0]["targetPort"].as<std::string>() == "memcache");
  CHECK(service["spec"]["selector"]["app.kubernetes.io/instance"].as<std::string>() == "cache");
  CHECK(r.find("PodDisruptionBudget")["spec"]["minAvailable"].as<int>() == 1);
  // The configuration: the values' config, with the admin endpoint and drain_timeout added.
  const YAML::Node config =
      YAML::Load(r.find("ConfigMap")["data"]["cachegate.yaml"].as<std::string>());
  CHECK(config["admin"]["listen"].as<std::string>() == "0.0.0.0:9090");
  CHECK(config["drain_timeout"].as<int>() == 15000);
  testing::TempDir root;
  CHECK(check_config(r, root) == "");
}

TEST_CASE("chart: a configuration change rolls the pods unless hot reload is chosen", "[chart]") {
  const Rendered a = render({});
  const Rendered b = render({"--set", "config.workers=4"});
  REQUIRE(a.rc == 0);
  REQUIRE(b.rc == 0);
  const auto checksum = [](const Rendered& r) {
    return r.find("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        .as<std::string>();
  };
  CHECK(checksum(a) != checksum(b));
  const Rendered hot = render({"--set", "hotReload=true", "--set", "drainTimeoutMs=30000"});
  REQUIRE(hot.rc == 0);
  const YAML::Node pod = hot.find("Deployment")["spec"]["template"];
  CHECK_FALSE(pod["metadata"]["annotations"]["checksum/config"]);
  CHECK(pod["spec"]["terminationGracePeriodSeconds"].as<int>() == 40);
  // A mode the chart does not know is an error, not an empty release.
  const Rendered bad = render({"--set", "mode=daemonset"});
  CHECK(bad.rc != 0);
  CHECK(bad.text.find("mode must be standalone or sidecar") != std::string::npos);
}

TEST_CASE("chart: configText is carried verbatim, with the admin endpoint and drain added",
          "[chart]") {
  testing::TempDir dir;
  const std::string values =
      dir.write_file("values.yaml",
                     "configText: |\n"
                     "  # written for cachegate\n"
                     "  workers: 1\n"
                     "  listeners:\n"
                     "    - {name: redis, listen: \"0.0.0.0:6379\", pool: r}\n"
                     "  pools:\n"
                     "    r:\n"
                     "      protocol: redis\n"
                     "      auto_eject_hosts: true\n"
                     "      server_retry_timeout: 3600000\n"
                     "      servers: [\"redis-0.redis:6379:1\"]\n");
  const Rendered r = render({"-f", values});
  REQUIRE(r.rc == 0);
  const std::string text = r.find("ConfigMap")["data"]["cachegate.yaml"].as<std::string>();
  CHECK(text.rfind("# written for cachegate\nworkers: 1\n", 0) == 0);
  CHECK(text.find("server_retry_timeout: 3600000\n") != std::string::npos);
  const YAML::Node config = YAML::Load(text);
  CHECK(config["admin"]["listen"].as<std::string>() == "0.0.0.0:9090");
  CHECK(config["drain_timeout"].as<int>() == 15000);
  // Ports come from its listeners.
  CHECK(r.find("Service")["spec"]["ports"][0]["port"].as<int>() == 6379);
  CHECK(r.find("Service")["spec"]["ports"][0]["name"].as<std::string>() == "redis");
  testing::TempDir root;
  CHECK(check_config(r, root) == "");
  // Through `config` too, numbers come out as integers (helm's toYaml goes through JSON).
  const Rendered mapped = render({"-f", dir.write_file("float.yaml",
                                                       "config:\n  pools:\n    cache:\n"
                                                       "      server_retry_timeout: 3600000\n")});
  REQUIRE(mapped.rc == 0);
  CHECK(mapped.find("ConfigMap")["data"]["cachegate.yaml"].as<std::string>().find(
            "server_retry_timeout: 3600000\n") != std::string::npos);
}

TEST_CASE("chart: sidecar mode renders the configuration and secrets only", "[chart]") {
  const Rendered r = render({"-f", kChart + "/examples/sidecar.yaml"});
  REQUIRE(r.rc == 0);
  CHECK(r.kinds() == std::vector<std::string>{"ConfigMap", "Secret"});
  const YAML::Node secret = r.find("Secret");
  CHECK(secret["metadata"]["name"].as<std::string>() == "cache-cachegate");
  CHECK(secret["data"]["redis-password"].as<std::string>() == "Y2hhbmdlLW1l");  // "change-me"
  const YAML::Node config =
      YAML::Load(r.find("ConfigMap")["data"]["cachegate.yaml"].as<std::string>());
  CHECK(config["drain_timeout"].as<int>() == 10000);
  CHECK(config["listeners"][1]["listen"].as<std::string>() == "127.0.0.1:6379");
  testing::TempDir root;
  put_file(root, "/etc/cachegate/secrets/redis-password", "change-me");
  CHECK(check_config(r, root) == "");
}

TEST_CASE("chart: the sidecar templates put cachegate into an application's pod", "[chart]") {
  // The chart as an application's chart would use it: its named templates in a pod of its own.
  testing::TempDir dir;
  REQUIRE(testing::run_command({"cp", "-r", kChart, dir.path() + "/cachegate"}, nullptr) == 0);
  dir.write_file("cachegate/templates/zz-app.yaml",
                 "apiVersion: v1\n"
                 "kind: Pod\n"
                 "metadata:\n"
                 "  name: app\n"
                 "spec:\n"
                 "  containers:\n"
                 "    - name: app\n"
                 "      image: example/app\n"
                 "    {{- include \"cachegate.sidecar.container\" . | nindent 4 }}\n"
                 "  volumes:\n"
                 "    {{- include \"cachegate.sidecar.volumes\" . | nindent 4 }}\n");
  std::string text;
  REQUIRE(testing::run_command({CHART_RENDER_BINARY, "--release", "cache", "-f",
                                kChart + "/examples/sidecar.yaml", dir.path() + "/cachegate"},
                               &text) == 0);
  YAML::Node pod;
  for (const YAML::Node& doc : YAML::LoadAll(text))
    if (doc.IsMap() && doc["kind"].as<std::string>() == "Pod") pod = doc;
  REQUIRE(pod);
  REQUIRE(pod["spec"]["containers"].size() == 2);
  const YAML::Node c = cachegate_container(pod["spec"]);
  CHECK(c["args"][1].as<std::string>() == "/etc/cachegate/config/cachegate.yaml");
  CHECK(c["ports"][1]["containerPort"].as<int>() == 6379);
  CHECK(c["readinessProbe"]["httpGet"]["path"].as<std::string>() == "/readyz");
  std::map<std::string, std::string> volumes;
  for (const auto& v : pod["spec"]["volumes"])
    volumes[v["name"].as<std::string>()] = v["configMap"]
                                               ? v["configMap"]["name"].as<std::string>()
                                               : v["secret"]["secretName"].as<std::string>();
  CHECK(volumes["cachegate-config"] == "cache-cachegate");
  CHECK(volumes["cachegate-secrets"] == "cache-cachegate");
  for (const auto& m : c["volumeMounts"])
    CHECK(volumes.count(m["name"].as<std::string>()) == 1);
}

TEST_CASE("chart: the legacy memcached example carries TLS, users, a certificate and monitoring",
          "[chart]") {
  const Rendered r = render({"-f", kChart + "/examples/legacy-memcached-tls.yaml"});
  REQUIRE(r.rc == 0);
  CHECK(r.kinds() == std::vector<std::string>{"Certificate", "ConfigMap", "Deployment",
                                              "PodDisruptionBudget", "Service", "ServiceMonitor"});
  const YAML::Node certificate = r.find("Certificate");
  CHECK(certificate["spec"]["secretName"].as<std::string>() == "cache-cachegate-tls");
  CHECK(certificate["spec"]["issuerRef"]["name"].as<std::string>() == "internal-ca");
  CHECK(certificate["spec"]["dnsNames"][1].as<std::string>() == "cache-cachegate.caching.svc");
  const YAML::Node spec = r.find("Deployment")["spec"]["template"]["spec"];
  std::map<std::string, std::string> mounts;
  for (const auto& m : cachegate_container(spec)["volumeMounts"])
    mounts[m["name"].as<std::string>()] = m["mountPath"].as<std::string>();
  CHECK(mounts["cachegate-tls"] == "/etc/cachegate/tls");
  CHECK(mounts["secret-cachegate-users"] == "/etc/cachegate/cachegate-users");
  CHECK(mounts["cachegate-config"] == "/etc/cachegate/config");
  std::map<std::string, std::string> volumes;
  for (const auto& v : spec["volumes"])
    volumes[v["name"].as<std::string>()] =
        v["secret"] ? v["secret"]["secretName"].as<std::string>() : "";
  CHECK(volumes["cachegate-tls"] == "cache-cachegate-tls");
  CHECK(volumes["secret-cachegate-users"] == "cachegate-users");
  CHECK(r.find("ServiceMonitor")["spec"]["endpoints"][0]["port"].as<std::string>() == "admin");
  CHECK(r.find("Service")["spec"]["ports"][0]["name"].as<std::string>() == "memcache-tls");
  // What the pod would mount: the certificate's Secret, the users' passwords.
  testing::TempDir root;
  testing::TlsMaterial tls;
  put_file(root, "/etc/cachegate/tls/tls.crt", read_file(tls.server.cert));
  put_file(root, "/etc/cachegate/tls/tls.key", read_file(tls.server.key));
  put_file(root, "/etc/cachegate/cachegate-users/checkout", "checkout-password");
  put_file(root, "/etc/cachegate/cachegate-users/search", "search-password");
  CHECK(check_config(r, root) == "");
  // Without the files, the same configuration is refused: the check is real.
  testing::TempDir empty;
  CHECK(check_config(r, empty) != "");
}

TEST_CASE("chart: yamllint accepts the chart's YAML and what it renders", "[chart]") {
  std::string out;
  const std::string lint_config = std::string(CACHEGATE_SOURCE_DIR) + "/charts/.yamllint";
  const int rc =
      testing::run_command({"yamllint", "--strict", "-c", lint_config, kChart + "/Chart.yaml",
                            kChart + "/values.yaml", kChart + "/examples"},
                           &out);
  INFO(out);
  CHECK(rc == 0);
  for (const std::string& values : {std::string(), kChart + "/examples/sidecar.yaml",
                                    kChart + "/examples/legacy-memcached-tls.yaml"}) {
    const Rendered r = render(values.empty() ? std::vector<std::string>{}
                                             : std::vector<std::string>{"-f", values});
    REQUIRE(r.rc == 0);
    testing::TempDir dir;
    const std::string path = dir.write_file("rendered.yaml", r.text);
    std::string lint;
    const int lint_rc =
        testing::run_command({"yamllint", "--strict", "-c", lint_config, path}, &lint);
    INFO(values << ": " << lint);
    CHECK(lint_rc == 0);
  }
}

}  // namespace
}  // namespace cachegate
