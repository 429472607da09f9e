// Command chart_render renders an unpacked Helm chart to stdout the way
// `helm template` does, for machines where the helm binary cannot be
// installed. The test run uses it to render charts/cachegate and check the
// manifests that an operator would get from helm.
//
// Usage:
//
//	chart_render [--release NAME] [--namespace NS] [-f values.yaml]...
//	             [--set path.to.key=value]... [--set-string k=v]... [--set-file k=path]...
//	             [--api-versions GROUP/VERSION]... [--kube-version V] [--is-upgrade]
//	             [--show-only templates/x.yaml]... [--no-hooks] [--skip-tests] [--debug]
//	             [NAME] CHART_DIR
//
// Helm's template engine is Go's text/template plus the sprig function
// library, so those are used directly. Everything around them (values
// merging, the --set syntax, the render context, error texts, how manifests
// are split, ordered and printed) follows helm 3's behaviour, because the
// point of this tool is that its output can be trusted to be what helm prints.
// Where helm parses or prints YAML it goes through sigs.k8s.io/yaml, which is
// go-yaml v2 plus a JSON round trip; this file reproduces that with
// gopkg.in/yaml.v2 and encoding/json, so that numbers, YAML 1.1 booleans
// ("yes"/"on"), list indentation and line folding come out as helm's do.
//
// Built in GOPATH mode against Debian's Go source packages (see build.sh);
// in that mode sprig v3 and semver v3 live at their unversioned paths.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/semver"
	"github.com/Masterminds/sprig"
	yaml2 "gopkg.in/yaml.v2"
	yaml3 "gopkg.in/yaml.v3"
)

// Defaults that helm 3.14 (built against Kubernetes 1.29 client libraries)
// uses for `helm template` when no cluster is consulted.
const (
	defaultReleaseName = "release-name"
	defaultNamespace   = "default"
	defaultKubeVersion = "v1.29.0"
	helmVersion        = "v3.14.4"
)

// defaultAPIVersions is what helm answers to .Capabilities.APIVersions.Has
// without a cluster: every group/version compiled into its Kubernetes client
// scheme (plus apiextensions). Charts commonly test e.g. "policy/v1" to pick
// an apiVersion, so an empty default would render differently from helm.
// Custom resources (monitoring.coreos.com/v1, ...) are only present when
// given with --api-versions, as with helm.
var defaultAPIVersions = []string{
	"v1",
	"admissionregistration.k8s.io/v1", "admissionregistration.k8s.io/v1alpha1", "admissionregistration.k8s.io/v1beta1",
	"internal.apiserver.k8s.io/v1alpha1",
	"apps/v1", "apps/v1beta1", "apps/v1beta2",
	"authentication.k8s.io/v1", "authentication.k8s.io/v1alpha1", "authentication.k8s.io/v1beta1",
	"authorization.k8s.io/v1", "authorization.k8s.io/v1beta1",
	"autoscaling/v1", "autoscaling/v2", "autoscaling/v2beta1", "autoscaling/v2beta2",
	"batch/v1", "batch/v1beta1",
	"certificates.k8s.io/v1", "certificates.k8s.io/v1alpha1", "certificates.k8s.io/v1beta1",
	"coordination.k8s.io/v1", "coordination.k8s.io/v1beta1",
	"discovery.k8s.io/v1", "discovery.k8s.io/v1beta1",
	"events.k8s.io/v1", "events.k8s.io/v1beta1",
	"extensions/v1beta1",
	"flowcontrol.apiserver.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1beta1",
	"flowcontrol.apiserver.k8s.io/v1beta2", "flowcontrol.apiserver.k8s.io/v1beta3",
	"networking.k8s.io/v1", "networking.k8s.io/v1alpha1", "networking.k8s.io/v1beta1",
	"node.k8s.io/v1", "node.k8s.io/v1alpha1", "node.k8s.io/v1beta1",
	"policy/v1", "policy/v1beta1",
	"rbac.authorization.k8s.io/v1", "rbac.authorization.k8s.io/v1alpha1", "rbac.authorization.k8s.io/v1beta1",
	"resource.k8s.io/v1alpha2",
	"scheduling.k8s.io/v1", "scheduling.k8s.io/v1alpha1", "scheduling.k8s.io/v1beta1",
	"storage.k8s.io/v1", "storage.k8s.io/v1alpha1", "storage.k8s.io/v1beta1",
	"apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1",
}

// ---------------------------------------------------------------------------
// Command line

type options struct {
	release     string
	namespace   string
	valueFiles  []string
	sets        []string
	setStrings  []string
	setFiles    []string
	apiVersions []string
	kubeVersion string
	showOnly    []string
	isUpgrade   bool
	noHooks     bool
	skipTests   bool
	debug       bool
	chartDir    string
}

const usage = `usage: chart_render [--release NAME] [--namespace NS] [-f values.yaml]...
                    [--set key=value]... [--set-string key=value]... [--set-file key=path]...
                    [--api-versions GROUP/VERSION]... [--kube-version V] [--is-upgrade]
                    [--show-only templates/FILE]... [--no-hooks] [--skip-tests] [--debug]
                    [NAME] CHART_DIR

Renders the chart's templates to stdout as 'helm template' does.
`

// parseArgs accepts flags anywhere on the line, as helm (cobra/pflag) does,
// in the forms --flag value, --flag=value, -f value and -fvalue.
func parseArgs(args []string) (*options, error) {
	o := &options{release: defaultReleaseName, namespace: defaultNamespace, kubeVersion: defaultKubeVersion}
	boolFlags := map[string]*bool{
		"--is-upgrade": &o.isUpgrade, "--no-hooks": &o.noHooks,
		"--skip-tests": &o.skipTests, "--debug": &o.debug,
	}
	// splitCommas mirrors pflag's StringSlice flags, which helm uses for
	// -f and --api-versions: "a,b" counts as two values.
	splitCommas := func(dst *[]string) func(string) {
		return func(v string) {
			for _, p := range strings.Split(v, ",") {
				if p != "" {
					*dst = append(*dst, p)
				}
			}
		}
	}
	appendTo := func(dst *[]string) func(string) { return func(v string) { *dst = append(*dst, v) } }
	setTo := func(dst *string) func(string) { return func(v string) { *dst = v } }
	valueFlags := map[string]func(string){
		"--release": setTo(&o.release), "--namespace": setTo(&o.namespace), "-n": setTo(&o.namespace),
		"--values": splitCommas(&o.valueFiles), "-f": splitCommas(&o.valueFiles),
		"--set": appendTo(&o.sets), "--set-string": appendTo(&o.setStrings), "--set-file": appendTo(&o.setFiles),
		"--api-versions": splitCommas(&o.apiVersions), "-a": splitCommas(&o.apiVersions),
		"--kube-version": setTo(&o.kubeVersion),
		"--show-only":    appendTo(&o.showOnly), "-s": appendTo(&o.showOnly),
	}
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		if a == "-h" || a == "--help" {
			fmt.Print(usage)
			os.Exit(0)
		}
		name, val, hasVal := a, "", false
		if eq := strings.IndexByte(a, '='); eq > 0 {
			name, val, hasVal = a[:eq], a[eq+1:], true
		} else if !strings.HasPrefix(a, "--") && len(a) > 2 {
			name, val, hasVal = a[:2], a[2:], true
		}
		if p, ok := boolFlags[name]; ok {
			if !hasVal {
				*p = true
				continue
			}
			b, err := strconv.ParseBool(val)
			if err != nil {
				return nil, fmt.Errorf("invalid argument %q for %q flag", val, name)
			}
			*p = b
			continue
		}
		set, ok := valueFlags[name]
		if !ok {
			return nil, fmt.Errorf("unknown flag: %s", name)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag needs an argument: %s", name)
			}
			i++
			val = args[i]
		}
		set(val)
	}
	switch len(positional) {
	case 1:
		o.chartDir = positional[0]
	case 2:
		o.release, o.chartDir = positional[0], positional[1]
	default:
		return nil, errors.New("expected [NAME] CHART_DIR\n" + usage)
	}
	return o, nil
}

func main() {
	opts, err := parseArgs(os.Args[1:])
	if err == nil {
		var out string
		out, err = run(opts)
		// helm prints nothing but the error when rendering fails, except that
		// --debug still shows the invalid YAML; run returns that output too.
		os.Stdout.WriteString(out)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s\n", err)
		os.Exit(1)
	}
}

// releaseNameRe and the 53-character limit are helm's rules for release
// names (they must be usable inside Kubernetes object names).
var releaseNameRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func run(o *options) (string, error) {
	if o.release == "" || len(o.release) > 53 || !releaseNameRe.MatchString(o.release) {
		return "", fmt.Errorf("release name %q: invalid release name, must match regex %s and the length must not be longer than 53", o.release, releaseNameRe)
	}
	ch, err := loadChart(o.chartDir)
	if err != nil {
		return "", err
	}
	if strings.EqualFold(ch.meta.Type, "library") {
		return "", errors.New("library charts are not installable")
	}
	userVals, err := mergeUserValues(o)
	if err != nil {
		return "", err
	}
	kube, err := parseKubeVersion(o.kubeVersion)
	if err != nil {
		return "", err
	}
	caps := &Capabilities{
		KubeVersion: kube,
		APIVersions: append(append(VersionSet{}, defaultAPIVersions...), o.apiVersions...),
		HelmVersion: BuildInfo{Version: helmVersion, GitTreeState: "clean", GoVersion: "go1.21"},
	}
	if ch.meta.KubeVersion != "" {
		c, cerr := semver.NewConstraint(ch.meta.KubeVersion)
		v, verr := semver.NewVersion(caps.KubeVersion.Version)
		if cerr != nil || verr != nil || !c.Check(v) {
			return "", fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", ch.meta.KubeVersion, caps.KubeVersion.Version)
		}
	}

	values := coalesceValues(ch.meta.Name, deepCopyMap(ch.values), userVals)
	top := Values{
		"Values": Values(values),
		"Release": map[string]interface{}{
			"Name":      o.release,
			"Namespace": o.namespace,
			"IsUpgrade": o.isUpgrade,
			"IsInstall": !o.isUpgrade,
			"Revision":  1,
			"Service":   "Helm",
		},
		// helm hands templates the chart metadata struct with IsRoot added,
		// so .Chart.Foo for an unknown Foo is an error, not an empty value.
		"Chart":        ChartInfo{Metadata: *ch.meta, IsRoot: true},
		"Capabilities": caps,
		"Files":        ch.files,
		"Subcharts":    map[string]interface{}{},
	}

	tpls := map[string]string{}
	for name, data := range ch.templates {
		tpls[ch.meta.Name+"/"+name] = string(data)
	}
	rendered, err := renderTemplates(tpls, top, ch.meta.Name+"/templates")
	if err != nil {
		return "", err
	}
	for name := range rendered {
		if strings.HasSuffix(name, "NOTES.txt") {
			delete(rendered, name)
		}
	}
	return formatOutput(rendered, o)
}

// ---------------------------------------------------------------------------
// Chart loading

// Metadata is Chart.yaml. Field names and JSON keys are helm's, since
// templates see this struct as .Chart (.Chart.AppVersion, .Chart.APIVersion).
type Metadata struct {
	Name         string            `json:"name,omitempty"`
	Home         string            `json:"home,omitempty"`
	Sources      []string          `json:"sources,omitempty"`
	Version      string            `json:"version,omitempty"`
	Description  string            `json:"description,omitempty"`
	Keywords     []string          `json:"keywords,omitempty"`
	Maintainers  []*Maintainer     `json:"maintainers,omitempty"`
	Icon         string            `json:"icon,omitempty"`
	APIVersion   string            `json:"apiVersion,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Tags         string            `json:"tags,omitempty"`
	AppVersion   string            `json:"appVersion,omitempty"`
	Deprecated   bool              `json:"deprecated,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	KubeVersion  string            `json:"kubeVersion,omitempty"`
	Dependencies []*Dependency     `json:"dependencies,omitempty"`
	Type         string            `json:"type,omitempty"`
}

type Maintainer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	URL   string `json:"url,omitempty"`
}

type Dependency struct {
	Name         string        `json:"name"`
	Version      string        `json:"version,omitempty"`
	Repository   string        `json:"repository"`
	Condition    string        `json:"condition,omitempty"`
	Tags         []string      `json:"tags,omitempty"`
	Enabled      bool          `json:"enabled,omitempty"`
	ImportValues []interface{} `json:"import-values,omitempty"`
	Alias        string        `json:"alias,omitempty"`
}

// ChartInfo is what .Chart is: the metadata plus IsRoot.
type ChartInfo struct {
	Metadata
	IsRoot bool
}

type chartData struct {
	meta      *Metadata
	values    map[string]interface{}
	templates map[string][]byte // keyed "templates/…"
	files     Files
}

// loadChart reads a chart directory with helm's rules: .helmignore (plus
// helm's built-in "templates/.?*") filters files, a UTF-8 BOM is dropped,
// and everything that is not Chart.yaml, values.yaml, the schema, a lock or
// requirements file, a template or a subchart is reachable through .Files.
func loadChart(dir string) (*chartData, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("path %q not found", dir)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory; only unpacked charts can be rendered", dir)
	}
	rules := &ignoreRules{}
	if data, err := os.ReadFile(filepath.Join(dir, ".helmignore")); err == nil {
		if err := rules.parse(data); err != nil {
			return nil, err
		}
	}
	if err := rules.add("templates/.?*"); err != nil {
		return nil, err
	}

	ch := &chartData{templates: map[string][]byte{}, files: Files{}}
	var subchartFiles []string
	err = walkChart(dir, "", rules, func(name string, data []byte) error {
		data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
		switch {
		case name == "Chart.yaml":
			ch.meta = &Metadata{}
			if err := sigsUnmarshal(data, ch.meta, coerceChartYAML); err != nil {
				return fmt.Errorf("cannot load Chart.yaml: %w", err)
			}
			if ch.meta.APIVersion == "" {
				ch.meta.APIVersion = "v1" // helm assumes a helm-2 era chart
			}
		case name == "values.yaml":
			ch.values = map[string]interface{}{}
			if err := sigsUnmarshal(data, &ch.values, nil); err != nil {
				return fmt.Errorf("cannot load values.yaml: %w", err)
			}
		case name == "values.schema.json", name == "Chart.lock", name == "requirements.lock":
			// Not visible to templates; schema validation is not done here.
		case name == "requirements.yaml":
			var req struct {
				Dependencies []interface{} `json:"dependencies"`
			}
			if err := sigsUnmarshal(data, &req, nil); err == nil && len(req.Dependencies) > 0 {
				subchartFiles = append(subchartFiles, name)
			}
		case strings.HasPrefix(name, "templates/"):
			ch.templates[name] = data
		case strings.HasPrefix(name, "charts/"):
			if filepath.Ext(name) == ".prov" {
				ch.files[name] = data
			} else {
				subchartFiles = append(subchartFiles, name)
			}
		default:
			ch.files[name] = data
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ch.meta == nil {
		return nil, errors.New("Chart.yaml file is missing")
	}
	if err := validateMetadata(ch.meta); err != nil {
		return nil, err
	}
	// Rendering without the subcharts would silently drop their manifests,
	// so refuse rather than print something helm would not.
	if len(ch.meta.Dependencies) > 0 || len(subchartFiles) > 0 {
		return nil, fmt.Errorf("chart %q has dependencies/subcharts, which chart_render does not support", ch.meta.Name)
	}
	return ch, nil
}

// walkChart visits regular files in lexical order, following symlinks as
// helm's loader does, and skipping what .helmignore excludes.
func walkChart(root, rel string, rules *ignoreRules, visit func(string, []byte) error) error {
	entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := path.Join(rel, e.Name())
		full := filepath.Join(root, filepath.FromSlash(name))
		fi, err := os.Stat(full)
		if err != nil {
			return err
		}
		if rules.ignore(name, fi.IsDir()) {
			continue
		}
		if fi.IsDir() {
			if err := walkChart(root, name, rules, visit); err != nil {
				return err
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("cannot load irregular file %s as it has file mode type bits set", full)
		}
		data, err := os.ReadFile(full)
		if err != nil {
			return err
		}
		if err := visit(name, data); err != nil {
			return err
		}
	}
	return nil
}

func validateMetadata(md *Metadata) error {
	switch {
	case md.Name == "":
		return errors.New("validation: chart.metadata.name is required")
	case md.Name != filepath.Base(md.Name):
		return fmt.Errorf("validation: chart.metadata.name %q is invalid", md.Name)
	case md.Version == "":
		return errors.New("validation: chart.metadata.version is required")
	}
	if _, err := semver.NewVersion(md.Version); err != nil {
		return fmt.Errorf("validation: chart.metadata.version %q is invalid", md.Version)
	}
	switch strings.ToLower(md.Type) {
	case "", "application", "library":
	default:
		return errors.New("validation: chart.metadata.type must be application or library")
	}
	return nil
}

// ignoreRules implements .helmignore the way helm does: a pattern without a
// slash matches the base name, one with a slash the whole path, a leading
// "/" anchors it, a trailing "/" restricts it to directories, "!" negates
// and "**" is rejected. (helm's negation is odd — a negated rule ignores
// everything it does NOT match — and that is kept so results agree.)
type ignoreRules struct{ rules []ignoreRule }

type ignoreRule struct {
	pattern  string
	negate   bool
	mustDir  bool
	fullPath bool
}

func (r *ignoreRules) parse(data []byte) error {
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		if err := r.add(s.Text()); err != nil {
			return err
		}
	}
	return s.Err()
}

func (r *ignoreRules) add(rule string) error {
	rule = strings.TrimSpace(rule)
	if rule == "" || strings.HasPrefix(rule, "#") {
		return nil
	}
	if strings.Contains(rule, "**") {
		return errors.New("double-star (**) syntax is not supported")
	}
	if _, err := filepath.Match(rule, "abc"); err != nil {
		return err
	}
	p := ignoreRule{}
	if strings.HasPrefix(rule, "!") {
		p.negate, rule = true, rule[1:]
	}
	if strings.HasSuffix(rule, "/") {
		p.mustDir, rule = true, strings.TrimSuffix(rule, "/")
	}
	if strings.HasPrefix(rule, "/") {
		p.fullPath, rule = true, strings.TrimPrefix(rule, "/")
	} else if strings.Contains(rule, "/") {
		p.fullPath = true
	}
	p.pattern = rule
	r.rules = append(r.rules, p)
	return nil
}

func (r *ignoreRules) ignore(name string, isDir bool) bool {
	for _, p := range r.rules {
		subject := name
		if !p.fullPath {
			subject = path.Base(name)
		}
		matched, _ := filepath.Match(p.pattern, subject)
		if p.negate {
			if (p.mustDir && !isDir) || !matched {
				return true
			}
			continue
		}
		if p.mustDir && !isDir {
			continue
		}
		if matched {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// YAML the way helm reads and writes it (sigs.k8s.io/yaml semantics)

// sigsUnmarshal parses YAML with go-yaml v2, turns it into JSON and decodes
// that into out. Going through JSON is what makes every number in helm's
// .Values a float64 (so `eq .Values.replicas 1` fails under helm too) and
// what applies the JSON field names of Metadata. coerce, when given, turns
// scalars into strings where the target field is a string, as sigs.k8s.io/yaml
// does for typed targets (appVersion: 1.10 becomes "1.1", as in helm).
func sigsUnmarshal(data []byte, out interface{}, coerce func(interface{})) error {
	var obj interface{}
	if err := yaml2.Unmarshal(data, &obj); err != nil {
		return fmt.Errorf("error converting YAML to JSON: %w", err)
	}
	j, err := jsonable(obj)
	if err != nil {
		return fmt.Errorf("error converting YAML to JSON: %w", err)
	}
	if coerce != nil {
		coerce(j)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("error converting YAML to JSON: %w", err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("error unmarshaling JSON: while decoding JSON: %w", err)
	}
	return nil
}

// jsonable converts go-yaml v2's map[interface{}]interface{} trees into
// string-keyed maps, stringifying keys the way sigs.k8s.io/yaml does.
func jsonable(v interface{}) (interface{}, error) {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, val := range t {
			var ks string
			switch kk := k.(type) {
			case string:
				ks = kk
			case int:
				ks = strconv.Itoa(kk)
			case int64:
				ks = strconv.FormatInt(kk, 10)
			case uint64:
				ks = strconv.FormatUint(kk, 10)
			case float64:
				ks = formatFloat32(kk)
			case bool:
				ks = strconv.FormatBool(kk)
			default:
				return nil, fmt.Errorf("Unsupported map key of type: %s, key: %+#v, value: %+#v", reflect.TypeOf(k), k, val)
			}
			cv, err := jsonable(val)
			if err != nil {
				return nil, err
			}
			m[ks] = cv
		}
		return m, nil
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, e := range t {
			cv, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			out[i] = cv
		}
		return out, nil
	}
	return v, nil
}

// formatFloat32 is how go-yaml v2 (and so sigs.k8s.io/yaml) spells a float
// that has to become a string.
func formatFloat32(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 32)
	switch s {
	case "+Inf":
		return ".inf"
	case "-Inf":
		return "-.inf"
	case "NaN":
		return ".nan"
	}
	return s
}

func scalarString(v interface{}) interface{} {
	switch t := v.(type) {
	case int:
		return strconv.Itoa(t)
	case int64:
		return strconv.FormatInt(t, 10)
	case uint64:
		return strconv.FormatUint(t, 10)
	case float64:
		return formatFloat32(t)
	case bool:
		return strconv.FormatBool(t)
	}
	return v
}

// coerceFields stringifies the named scalar fields of a map in place.
func coerceFields(v interface{}, fields ...string) {
	if m, ok := v.(map[string]interface{}); ok {
		for _, f := range fields {
			if val, ok := m[f]; ok {
				m[f] = scalarString(val)
			}
		}
	}
}

func coerceList(v interface{}, each func(interface{}) interface{}) {
	if l, ok := v.([]interface{}); ok {
		for i := range l {
			l[i] = each(l[i])
		}
	}
}

func coerceMapValues(v interface{}) {
	if m, ok := v.(map[string]interface{}); ok {
		for k, val := range m {
			m[k] = scalarString(val)
		}
	}
}

func coerceChartYAML(v interface{}) {
	coerceFields(v, "name", "home", "version", "description", "icon", "apiVersion",
		"condition", "tags", "appVersion", "kubeVersion", "type")
	m, ok := v.(map[string]interface{})
	if !ok {
		return
	}
	coerceList(m["sources"], scalarString)
	coerceList(m["keywords"], scalarString)
	coerceMapValues(m["annotations"])
	coerceList(m["maintainers"], func(e interface{}) interface{} { coerceFields(e, "name", "email", "url"); return e })
	coerceList(m["dependencies"], func(e interface{}) interface{} {
		coerceFields(e, "name", "version", "repository", "condition", "alias")
		if dm, ok := e.(map[string]interface{}); ok {
			coerceList(dm["tags"], scalarString)
		}
		return e
	})
}

// sigsMarshal is helm's toYaml encoding: JSON first (so struct JSON tags and
// JSON number forms apply), then go-yaml v2, which sorts keys, does not
// indent lists under their key and folds long strings at 80 columns.
func sigsMarshal(v interface{}) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("error marshaling into JSON: %w", err)
	}
	var obj interface{}
	if err := yaml2.Unmarshal(j, &obj); err != nil {
		return nil, err
	}
	return yaml2.Marshal(obj)
}

// ---------------------------------------------------------------------------
// Values: -f files, --set*, and the chart's defaults

// Values is the type of the render context and of .Values. It is a named
// map with helm's methods because text/template resolves a method before a
// map key, so .Values.YAML or .Values.Table behave as under helm.
type Values map[string]interface{}

func (v Values) YAML() (string, error) {
	b, err := sigsMarshal(v)
	return string(b), err
}

func (v Values) AsMap() map[string]interface{} {
	if len(v) == 0 {
		return map[string]interface{}{}
	}
	return v
}

func (v Values) Encode(w io.Writer) error {
	b, err := sigsMarshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (v Values) Table(name string) (Values, error) {
	table := v
	for _, n := range strings.Split(name, ".") {
		next, ok := table[n]
		if !ok {
			return table, fmt.Errorf("%q is not a table", n)
		}
		switch t := next.(type) {
		case map[string]interface{}:
			table = t
		case Values:
			table = t
		default:
			return Values{}, fmt.Errorf("%q is not a table", n)
		}
	}
	return table, nil
}

func (v Values) PathValue(p string) (interface{}, error) {
	if p == "" {
		return nil, errors.New("YAML path cannot be empty")
	}
	parts := strings.Split(p, ".")
	key := parts[len(parts)-1]
	table := v
	if len(parts) > 1 {
		t, err := v.Table(strings.Join(parts[:len(parts)-1], "."))
		if err != nil {
			return nil, fmt.Errorf("%q is not a value", key)
		}
		table = t
	}
	if val, ok := table[key]; ok && !isTable(val) {
		return val, nil
	}
	return nil, fmt.Errorf("%q is not a value", key)
}

func isTable(v interface{}) bool {
	switch v.(type) {
	case map[string]interface{}, Values:
		return true
	}
	return false
}

// mergeUserValues builds what the user supplied, in helm's order: all -f
// files (later files win, maps merge), then all --set, --set-string and
// --set-file assignments on top.
func mergeUserValues(o *options) (map[string]interface{}, error) {
	base := map[string]interface{}{}
	for _, f := range o.valueFiles {
		var data []byte
		var err error
		if f == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			return nil, err
		}
		current := map[string]interface{}{}
		if err := sigsUnmarshal(data, &current, nil); err != nil {
			return nil, fmt.Errorf("failed to parse %s: %w", f, err)
		}
		base = mergeMaps(base, current)
	}
	typed := func(s string) (interface{}, error) { return typedValue(s), nil }
	asString := func(s string) (interface{}, error) { return s, nil }
	fromFile := func(s string) (interface{}, error) {
		b, err := os.ReadFile(s)
		return string(b), err
	}
	for _, group := range []struct {
		flag   string
		values []string
		conv   func(string) (interface{}, error)
	}{{"--set", o.sets, typed}, {"--set-string", o.setStrings, asString}, {"--set-file", o.setFiles, fromFile}} {
		for _, s := range group.values {
			p := &setParser{in: []rune(s), conv: group.conv}
			if err := p.parseInto(base); err != nil {
				return nil, fmt.Errorf("failed parsing %s data: %w", group.flag, err)
			}
		}
	}
	return base, nil
}

func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]interface{}); ok {
			if om, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeMaps(om, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// typedValue is how helm types an unquoted --set value: true/false/null
// (any case), integers that do not start with 0 (and 0 itself) become
// int64, everything else — floats included — stays a string.
func typedValue(s string) interface{} {
	switch {
	case strings.EqualFold(s, "true"):
		return true
	case strings.EqualFold(s, "false"):
		return false
	case strings.EqualFold(s, "null"):
		return nil
	case s == "0":
		return int64(0)
	}
	if s != "" && s[0] != '0' {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
	}
	return s
}

// setParser reads helm's --set syntax: comma-separated key=value pairs,
// dotted keys, list indexes (a[0].b=x, a[0][1]=x), {x,y} list values and
// backslash escapes. It writes into an existing map so --set lands on top of
// the -f values; stepping through an existing non-map/non-list is an error,
// as in helm.
type setParser struct {
	in   []rune
	pos  int
	conv func(string) (interface{}, error)
}

var errSetNotList = errors.New("not a list")

const (
	setMaxIndex = 65536
	setMaxDepth = 30
)

func (p *setParser) parseInto(dest map[string]interface{}) error {
	for {
		err := p.key(dest, 0)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// until returns the runes up to (not including) the first unescaped stop
// rune, and that rune; io.EOF when the input ran out first.
func (p *setParser) until(stops string) (string, rune, error) {
	var sb strings.Builder
	for p.pos < len(p.in) {
		r := p.in[p.pos]
		p.pos++
		if strings.ContainsRune(stops, r) {
			return sb.String(), r, nil
		}
		if r == '\\' {
			if p.pos >= len(p.in) {
				return sb.String(), 0, io.EOF
			}
			r = p.in[p.pos]
			p.pos++
		}
		sb.WriteRune(r)
	}
	return sb.String(), 0, io.EOF
}

func conversionError(v interface{}, want string) error {
	return fmt.Errorf("unable to parse key: interface conversion: interface {} is %T, not %s", v, want)
}

func setKey(m map[string]interface{}, k string, v interface{}) {
	if k != "" {
		m[k] = v
	}
}

func (p *setParser) key(data map[string]interface{}, depth int) error {
	k, last, err := p.until("=[,.")
	if err != nil {
		if k == "" {
			return err
		}
		return fmt.Errorf("key %q has no value", k)
	}
	switch last {
	case '[':
		idx, err := p.index()
		if err != nil {
			return fmt.Errorf("error parsing index: %w", err)
		}
		list := []interface{}{}
		if existing, ok := data[k]; ok {
			if list, ok = existing.([]interface{}); !ok {
				return conversionError(existing, "[]interface {}")
			}
		}
		list, err = p.listItem(list, idx, depth)
		setKey(data, k, list)
		return err
	case '=':
		return p.assign(func(v interface{}) error { setKey(data, k, v); return nil })
	case ',':
		setKey(data, k, "")
		return fmt.Errorf("key %q has no value (cannot end with ,)", k)
	default: // '.'
		depth++
		if depth > setMaxDepth {
			return fmt.Errorf("value name nested level is greater than maximum supported nested level of %d", setMaxDepth)
		}
		inner := map[string]interface{}{}
		if existing, ok := data[k]; ok {
			if inner, ok = existing.(map[string]interface{}); !ok {
				return conversionError(existing, "map[string]interface {}")
			}
		}
		err := p.key(inner, depth)
		if err == nil && len(inner) == 0 {
			return fmt.Errorf("key map %q has no value", k)
		}
		if len(inner) != 0 {
			setKey(data, k, inner)
		}
		return err
	}
}

// assign reads the value after '=' and stores it. Reaching the end of input
// right after '=' stores "" and reports EOF, which ends parsing cleanly.
func (p *setParser) assign(store func(interface{}) error) error {
	list, err := p.valueList()
	switch err {
	case nil:
		return store(list)
	case io.EOF:
		store("")
		return io.EOF
	case errSetNotList:
		raw, _, verr := p.until(",")
		v, cerr := p.conv(raw)
		if cerr != nil {
			return cerr
		}
		if serr := store(v); serr != nil {
			return serr
		}
		if verr != nil {
			return verr
		}
		return nil
	}
	return err
}

func (p *setParser) index() (int, error) {
	s, _, err := p.until("]")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(s)
}

func setIndex(list []interface{}, i int, v interface{}) ([]interface{}, error) {
	if i < 0 {
		return list, fmt.Errorf("negative %d index not allowed", i)
	}
	if i > setMaxIndex {
		return list, fmt.Errorf("index of %d is greater than maximum supported index of %d", i, setMaxIndex)
	}
	if len(list) <= i {
		grown := make([]interface{}, i+1)
		copy(grown, list)
		list = grown
	}
	list[i] = v
	return list, nil
}

func (p *setParser) listItem(list []interface{}, i, depth int) ([]interface{}, error) {
	if i < 0 {
		return list, fmt.Errorf("negative %d index not allowed", i)
	}
	rest, last, err := p.until("[.=")
	switch {
	case rest != "":
		return list, fmt.Errorf("unexpected data at end of array index: %q", rest)
	case err != nil:
		return list, err
	}
	switch last {
	case '=':
		var out []interface{}
		err := p.assign(func(v interface{}) error {
			var e error
			out, e = setIndex(list, i, v)
			return e
		})
		if err == io.EOF {
			err = nil
		}
		if out == nil {
			out = list
		}
		return out, err
	case '[':
		next, err := p.index()
		if err != nil {
			return list, fmt.Errorf("error parsing index: %w", err)
		}
		var inner []interface{}
		if len(list) > i && list[i] != nil {
			var ok bool
			if inner, ok = list[i].([]interface{}); !ok {
				return list, conversionError(list[i], "[]interface {}")
			}
		}
		inner, err = p.listItem(inner, next, depth)
		if err != nil {
			return list, err
		}
		return setIndex(list, i, inner)
	default: // '.'
		inner := map[string]interface{}{}
		if len(list) > i {
			m, ok := list[i].(map[string]interface{})
			if !ok {
				m = map[string]interface{}{}
				list[i] = m
			}
			inner = m
		}
		if err := p.key(inner, depth); err != nil {
			return list, err
		}
		return setIndex(list, i, inner)
	}
}

func (p *setParser) valueList() ([]interface{}, error) {
	if p.pos >= len(p.in) {
		return nil, io.EOF
	}
	if p.in[p.pos] != '{' {
		return nil, errSetNotList
	}
	p.pos++
	list := []interface{}{}
	for {
		item, last, err := p.until(",}")
		if err != nil {
			return list, errors.New("list must terminate with '}'")
		}
		v, cerr := p.conv(item)
		if cerr != nil {
			return list, cerr
		}
		list = append(list, v)
		if last == '}' {
			if p.pos < len(p.in) && p.in[p.pos] == ',' {
				p.pos++
			}
			return list, nil
		}
	}
}

// coalesceValues layers the user's values over the chart defaults the way
// helm does: user values win, maps merge key by key, and a user value of
// null deletes the default (that is how a default is switched off).
func coalesceValues(chartName string, defaults, user map[string]interface{}) map[string]interface{} {
	v := deepCopyMap(user)
	for key, def := range defaults {
		uv, ok := v[key]
		if !ok {
			v[key] = def
			continue
		}
		if uv == nil {
			delete(v, key)
			continue
		}
		if um, ok := uv.(map[string]interface{}); ok {
			dm, ok := def.(map[string]interface{})
			if !ok {
				if def != nil {
					warnf("warning: skipped value for %s.%s: Not a table.", chartName, key)
				}
				continue
			}
			coalesceTables(um, dm, chartName+"."+key)
		}
	}
	return v
}

func coalesceTables(dst, src map[string]interface{}, prefix string) {
	for key, val := range src {
		full := prefix + "." + key
		dv, ok := dst[key]
		switch {
		case ok && dv == nil:
			delete(dst, key)
		case !ok:
			dst[key] = val
		case isTable(val):
			if dm, ok := dv.(map[string]interface{}); ok {
				coalesceTables(dm, val.(map[string]interface{}), full)
			} else {
				warnf("warning: cannot overwrite table with non table for %s (%v)", full, val)
			}
		case isTable(dv) && val != nil:
			warnf("warning: destination for %s is a table. Ignoring non-table value (%v)", full, val)
		}
	}
}

func warnf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func deepCopyMap(m map[string]interface{}) map[string]interface{} {
	if m == nil {
		return map[string]interface{}{}
	}
	out := make(map[string]interface{}, len(m))
	for k, v := range m {
		out[k] = deepCopy(v)
	}
	return out
}

func deepCopy(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		return deepCopyMap(t)
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// ---------------------------------------------------------------------------
// Render context types (.Capabilities, .Files)

type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion BuildInfo
}

type KubeVersion struct {
	Version string
	Major   string
	Minor   string
}

func (kv *KubeVersion) String() string { return kv.Version }

// GitVersion is deprecated in helm but still widely used in charts
// (semverCompare ">=1.19-0" .Capabilities.KubeVersion.GitVersion).
func (kv *KubeVersion) GitVersion() string { return kv.Version }

type VersionSet []string

func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

type BuildInfo struct {
	Version      string `json:"version,omitempty"`
	GitCommit    string `json:"git_commit,omitempty"`
	GitTreeState string `json:"git_tree_state,omitempty"`
	GoVersion    string `json:"go_version,omitempty"`
}

func parseKubeVersion(s string) (KubeVersion, error) {
	v, err := semver.NewVersion(s)
	if err != nil {
		return KubeVersion{}, fmt.Errorf("invalid kube version %q: %w", s, err)
	}
	return KubeVersion{
		Version: "v" + v.String(),
		Major:   strconv.FormatUint(v.Major(), 10),
		Minor:   strconv.FormatUint(v.Minor(), 10),
	}, nil
}

// Files is .Files: the chart's non-template files by chart-relative path.
type Files map[string][]byte

func (f Files) GetBytes(name string) []byte { return f[name] }

func (f Files) Get(name string) string { return string(f[name]) }

// Lines splits a file into lines, dropping one trailing newline.
func (f Files) Lines(name string) []string {
	s := string(f[name])
	if s == "" {
		return []string{}
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// Glob selects files by a pattern in which * and ? stop at "/", ** crosses
// it, and [..] and {a,b} work as in helm (gobwas/glob). A malformed pattern
// matches everything, as helm's fallback does.
func (f Files) Glob(pattern string) Files {
	re, err := globRegexp(pattern)
	out := Files{}
	for name, data := range f {
		if err != nil || re.MatchString(name) {
			out[name] = data
		}
	}
	return out
}

// AsConfig renders the files as ConfigMap data: base name to contents.
func (f Files) AsConfig() string {
	if f == nil {
		return ""
	}
	m := map[string]string{}
	for name, data := range f {
		m[path.Base(name)] = string(data)
	}
	return toYAML(m)
}

// AsSecrets renders the files as Secret data: base name to base64 contents.
func (f Files) AsSecrets() string {
	if f == nil {
		return ""
	}
	m := map[string]string{}
	for name, data := range f {
		m[path.Base(name)] = base64.StdEncoding.EncodeToString(data)
	}
	return toYAML(m)
}

func globRegexp(pattern string) (*regexp.Regexp, error) {
	var sb strings.Builder
	sb.WriteString("^")
	depth := 0 // inside {…}
	rs := []rune(pattern)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\\' && i+1 < len(rs):
			i++
			sb.WriteString(regexp.QuoteMeta(string(rs[i])))
		case r == '*' && i+1 < len(rs) && rs[i+1] == '*':
			i++
			sb.WriteString(".*")
		case r == '*':
			sb.WriteString("[^/]*")
		case r == '?':
			sb.WriteString("[^/]")
		case r == '[':
			end := -1
			for j := i + 1; j < len(rs); j++ {
				if rs[j] == ']' && j > i+1 {
					end = j
					break
				}
			}
			if end < 0 {
				return nil, fmt.Errorf("unterminated [ in %q", pattern)
			}
			class := string(rs[i+1 : end])
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			sb.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i = end
		case r == '{':
			depth++
			sb.WriteString("(?:")
		case r == '}' && depth > 0:
			depth--
			sb.WriteString(")")
		case r == ',' && depth > 0:
			sb.WriteString("|")
		default:
			sb.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unterminated { in %q", pattern)
	}
	sb.WriteString("$")
	return regexp.Compile(sb.String())
}

// ---------------------------------------------------------------------------
// Template functions

// toYAML is helm's toYaml: errors become an empty string and the final
// newline is dropped, so `toYaml .x | nindent 4` lines up.
func toYAML(v interface{}) string {
	b, err := sigsMarshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

func mustToYAML(v interface{}) string {
	b, err := sigsMarshal(v)
	if err != nil {
		panic(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// toYAMLPretty is newer helm's toYamlPretty: go-yaml v3 with two-space
// indentation, which (unlike toYaml) indents lists under their key.
func toYAMLPretty(v interface{}) string {
	var buf bytes.Buffer
	enc := yaml3.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// fromYAML reports a parse error inside the result (key "Error") instead of
// failing the render, as helm does.
func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := sigsUnmarshal([]byte(s), &m, nil); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	a := []interface{}{}
	if err := sigsUnmarshal([]byte(s), &a, nil); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func mustToJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(s string) []interface{} {
	a := []interface{}{}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

// Messages from required and fail are wrapped in these markers so that the
// final error can be cut down to "execution error at (file:line:col): msg",
// the form helm prints, however deep in include/tpl the call was.
const (
	warnStart = "HELM_ERR_START"
	warnEnd   = "HELM_ERR_END"
)

var warnRe = regexp.MustCompile(warnStart + `((?s).*)` + warnEnd)

const maxIncludeDepth = 1000

// funcMap is sprig's text function map minus env/expandenv (helm removes
// them so a chart cannot read the renderer's environment) plus helm's own.
func funcMap(t *template.Template, included map[string]int) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	extra := template.FuncMap{
		"toYaml":        toYAML,
		"mustToYaml":    mustToYAML,
		"toYamlPretty":  toYAMLPretty,
		"fromYaml":      fromYAML,
		"fromYamlArray": fromYAMLArray,
		"toJson":        toJSON,
		"mustToJson":    mustToJSON,
		"fromJson":      fromJSON,
		"fromJsonArray": fromJSONArray,
		"include":       includeFunc(t, included),
		"tpl":           tplFunc(t, included),
		"required": func(msg string, v interface{}) (interface{}, error) {
			if v == nil {
				return v, errors.New(warnStart + msg + warnEnd)
			}
			if s, ok := v.(string); ok && s == "" {
				return v, errors.New(warnStart + msg + warnEnd)
			}
			return v, nil
		},
		"fail": func(msg string) (string, error) {
			return "", errors.New(warnStart + msg + warnEnd)
		},
		// There is no cluster to ask: helm template answers lookups with an
		// empty object, and DNS lookups with an empty string.
		"lookup": func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
			return map[string]interface{}{}, nil
		},
		"getHostByName": func(string) string { return "" },
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

// includeFunc renders a named template into a string (so it can be piped,
// unlike the template action). The per-name counter stops runaway recursion.
func includeFunc(t *template.Template, included map[string]int) func(string, interface{}) (string, error) {
	return func(name string, data interface{}) (string, error) {
		if included[name] > maxIncludeDepth {
			return "", fmt.Errorf("rendering template has a nested reference name: %s: unable to execute template", name)
		}
		included[name]++
		defer func() { included[name]-- }()
		var buf strings.Builder
		err := t.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
}

// tplFunc renders a string as a template. It works on a clone of the whole
// template set so the string can include the chart's named templates and
// define its own without affecting other files. Options are not carried by
// Clone, so missingkey=zero is set again.
func tplFunc(parent *template.Template, included map[string]int) func(string, interface{}) (string, error) {
	return func(text string, vals interface{}) (string, error) {
		t, err := parent.Clone()
		if err != nil {
			return "", fmt.Errorf("cannot clone template: %w", err)
		}
		t.Option("missingkey=zero")
		t.Funcs(template.FuncMap{
			"include": includeFunc(t, included),
			"tpl":     tplFunc(t, included),
		})
		t, err = t.New(parent.Name()).Parse(text)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %w", text, err)
		}
		var buf strings.Builder
		if err := t.Execute(&buf, vals); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %w", text, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
}

// ---------------------------------------------------------------------------
// Rendering

// renderTemplates parses every template into one set (so any file can use
// another's defines) and executes each non-partial file with the context.
// Parse order matters when two files define the same name — the last parse
// wins — so helm's order is kept: deepest paths first, and within a depth
// reverse lexical order.
func renderTemplates(tpls map[string]string, top Values, basePath string) (out map[string]string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rendering template failed: %v", r)
		}
	}()
	t := template.New("gotpl")
	// Missing keys render as the zero value; for interface{} map entries Go
	// still prints "<no value>", which is blanked below as helm does.
	t.Option("missingkey=zero")
	t.Funcs(funcMap(t, map[string]int{}))

	names := make([]string, 0, len(tpls))
	for n := range tpls {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		di, dj := strings.Count(names[i], "/"), strings.Count(names[j], "/")
		if di != dj {
			return di > dj
		}
		return names[i] > names[j]
	})
	for _, name := range names {
		if _, err := t.New(name).Parse(tpls[name]); err != nil {
			return nil, cleanupParseError(name, err)
		}
	}

	out = map[string]string{}
	for _, name := range names {
		if strings.HasPrefix(path.Base(name), "_") {
			continue // partials only hold defines
		}
		top["Template"] = Values{"Name": name, "BasePath": basePath}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, name, top); err != nil {
			return nil, cleanupExecError(name, err)
		}
		out[name] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return out, nil
}

// cleanupParseError shortens "template: file:line: ...: msg" to helm's
// "parse error at (file:line): msg".
func cleanupParseError(name string, err error) error {
	tokens := strings.Split(err.Error(), ": ")
	if len(tokens) == 1 {
		return fmt.Errorf("parse error in (%s): %s", name, err)
	}
	return fmt.Errorf("parse error at (%s): %s", tokens[1], tokens[len(tokens)-1])
}

// cleanupExecError turns required/fail errors into helm's
// "execution error at (file:line:col): message"; other template errors are
// printed in full, as helm prints them.
func cleanupExecError(name string, err error) error {
	var execErr template.ExecError
	if !errors.As(err, &execErr) {
		return err
	}
	tokens := strings.SplitN(err.Error(), ": ", 3)
	if len(tokens) != 3 {
		return fmt.Errorf("execution error in (%s): %s", name, err)
	}
	if parts := warnRe.FindStringSubmatch(tokens[2]); len(parts) >= 2 {
		return fmt.Errorf("execution error at (%s): %s", tokens[1], parts[1])
	}
	return err
}

// ---------------------------------------------------------------------------
// Output

// docSep is helm's YAML document splitter: "---" at the start or after a
// newline, with the whitespace around it.
var docSep = regexp.MustCompile(`(?:^|\s*\n)---\s*`)

// installOrder is the Kind order helm installs in, and so the order
// `helm template` prints manifests in; unknown kinds go last, sorted by
// kind name.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
	"ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
	"CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
	"ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
	"DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
	"APIService",
}

var hookEvents = map[string]bool{
	"pre-install": true, "post-install": true, "pre-delete": true, "post-delete": true,
	"pre-upgrade": true, "post-upgrade": true, "pre-rollback": true, "post-rollback": true,
	"test": true, "test-success": true,
}

type manifest struct {
	source  string // chart/templates/file
	content string
	kind    string
	isTest  bool
}

// simpleHead is the part of a manifest helm reads to sort it.
type simpleHead struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind,omitempty"`
	Metadata   *struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata,omitempty"`
}

func coerceHead(v interface{}) {
	coerceFields(v, "apiVersion", "kind")
	if m, ok := v.(map[string]interface{}); ok {
		coerceFields(m["metadata"], "name")
		if md, ok := m["metadata"].(map[string]interface{}); ok {
			coerceMapValues(md["annotations"])
		}
	}
}

// formatOutput splits each rendered file into documents, drops empty ones,
// orders them as helm does (file path, then a stable sort by install order
// of Kind), prints hook documents after the rest, and applies --show-only.
func formatOutput(rendered map[string]string, o *options) (string, error) {
	paths := make([]string, 0, len(rendered))
	for p := range rendered {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var generic, hooks []manifest
	for _, p := range paths {
		content := rendered[p]
		if strings.HasPrefix(path.Base(p), "_") || strings.TrimSpace(content) == "" {
			continue
		}
		for _, doc := range docSep.Split(strings.TrimSpace(content), -1) {
			if doc == "" {
				continue
			}
			doc = strings.TrimSpace(doc)
			var head simpleHead
			if err := sigsUnmarshal([]byte(doc), &head, coerceHead); err != nil {
				err = fmt.Errorf("YAML parse error on %s: %w", p, err)
				if !o.debug {
					return "", fmt.Errorf("%w\n\nUse --debug flag to render out invalid YAML", err)
				}
				var raw strings.Builder
				for _, q := range paths {
					if strings.TrimSpace(rendered[q]) != "" {
						fmt.Fprintf(&raw, "---\n# Source: %s\n%s\n", q, rendered[q])
					}
				}
				return raw.String(), err
			}
			m := manifest{source: p, content: doc, kind: head.Kind}
			var annotations map[string]string
			if head.Metadata != nil {
				annotations = head.Metadata.Annotations
			}
			hookSpec, isHook := annotations["helm.sh/hook"]
			if !isHook {
				generic = append(generic, m)
				continue
			}
			known := true
			for _, ev := range strings.Split(hookSpec, ",") {
				ev = strings.ToLower(strings.TrimSpace(ev))
				if !hookEvents[ev] {
					known = false // helm drops hooks it does not know
				}
				if ev == "test" || ev == "test-success" {
					m.isTest = true
				}
			}
			if known {
				hooks = append(hooks, m)
			}
		}
	}
	sortByKind(generic)
	sortByKind(hooks)

	var body strings.Builder
	for _, m := range generic {
		fmt.Fprintf(&body, "---\n# Source: %s\n%s\n", m.source, m.content)
	}
	var out strings.Builder
	out.WriteString(strings.TrimSpace(body.String()) + "\n")
	if !o.noHooks {
		for _, m := range hooks {
			if o.skipTests && m.isTest {
				continue
			}
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", m.source, m.content)
		}
	}
	if len(o.showOnly) == 0 {
		return out.String(), nil
	}
	return showOnly(out.String(), o.showOnly)
}

func sortByKind(ms []manifest) {
	rank := map[string]int{}
	for i, k := range installOrder {
		rank[k] = i
	}
	sort.SliceStable(ms, func(i, j int) bool {
		ri, iok := rank[ms[i].kind]
		rj, jok := rank[ms[j].kind]
		switch {
		case !iok && !jok:
			return ms[i].kind < ms[j].kind
		case !iok:
			return false
		case !jok:
			return true
		}
		return ri < rj
	})
}

var sourceRe = regexp.MustCompile(`# Source: [^/]+/(.+)`)

// showOnly keeps the documents whose template path (relative to the chart,
// e.g. templates/deployment.yaml) matches one of the patterns; a pattern
// matching nothing is an error, as in helm.
func showOnly(all string, patterns []string) (string, error) {
	var docs []string
	for _, d := range docSep.Split(strings.TrimSpace(all), -1) {
		if d = strings.TrimSpace(d); d != "" {
			docs = append(docs, d)
		}
	}
	var out strings.Builder
	for _, pat := range patterns {
		pat = filepath.ToSlash(pat)
		found := false
		for _, d := range docs {
			sub := sourceRe.FindStringSubmatch(d)
			if sub == nil {
				continue
			}
			if ok, _ := filepath.Match(pat, sub[1]); ok {
				fmt.Fprintf(&out, "---\n%s\n", d)
				found = true
			}
		}
		if !found {
			return "", fmt.Errorf("could not find template %s in chart", pat)
		}
	}
	return out.String(), nil
}
