package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPI checks /api/v1/openapi.json against the handlers: every
// route of the API is documented, every documented operation answers with
// its documented status, and every answer has the documented shape (no
// missing required field, no undocumented field, types and enums as
// written).
func TestOpenAPI(t *testing.T) {
	d := startDesk(t, "t0k3n")
	id := d.outage(t)
	code, body := d.do(t, "GET", "/api/v1/openapi.json", "")
	if code != 200 {
		t.Fatalf("openapi.json: %d", code)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.0.3" {
		t.Errorf("openapi version %v", doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	documented := map[string]bool{}
	for p, ops := range paths {
		for m := range ops.(map[string]any) {
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	routed := map[string]bool{}
	for _, rt := range d.srv.routes {
		if !strings.HasPrefix(rt.path, "/api/v1/") {
			continue
		}
		key := rt.method + " " + rt.path
		routed[key] = true
		if !documented[key] {
			t.Errorf("route %s is not in openapi.json", key)
		}
	}
	for key := range documented {
		if !routed[key] {
			t.Errorf("openapi.json documents %s, which no route serves", key)
		}
	}
	ids := map[string]string{"feeders": "F0", "outages": url.PathEscape(id)}
	bodies := map[string]string{"etr": `{"etr":"2025-01-15T14:30:00Z"}`, "ack": `{"by":"ana"}`}
	for key := range documented {
		method, p, _ := strings.Cut(key, " ")
		t.Run(key, func(t *testing.T) {
			op := paths[p].(map[string]any)[strings.ToLower(method)].(map[string]any)
			resps := op["responses"].(map[string]any)
			u := p
			for coll, v := range ids {
				if strings.HasPrefix(p, "/api/v1/"+coll+"/{id}") {
					u = strings.Replace(p, "{id}", v, 1)
				}
			}
			hdr := []string{"Authorization", "Bearer t0k3n", "Content-Type", "application/json"}
			if p == "/api/v1/stream" {
				s := openStream(t, d, "")
				s.close()
				if _, ok := resps["200"].(map[string]any)["content"].(map[string]any)["text/event-stream"]; !ok {
					t.Error("stream: 200 is not documented as text/event-stream")
				}
				return
			}
			code, body := d.do(t, method, u, bodies[p[strings.LastIndex(p, "/")+1:]], hdr...)
			checkResponse(t, doc, resps, code, body)
			// A missing resource answers a documented error.
			if strings.Contains(p, "{id}") {
				code, body := d.do(t, method, strings.Replace(p, "{id}", "nope", 1), bodies[p[strings.LastIndex(p, "/")+1:]], hdr...)
				if code != 404 {
					t.Errorf("unknown id: %d %s", code, body)
				}
				checkResponse(t, doc, resps, code, body)
			}
		})
	}
}

func checkResponse(t *testing.T, doc map[string]any, resps map[string]any, code int, body string) {
	t.Helper()
	r, ok := resps[fmt.Sprint(code)].(map[string]any)
	if !ok {
		t.Fatalf("status %d is not documented: %s", code, body)
	}
	schema := r["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("status %d: not JSON: %v", code, err)
	}
	for _, e := range validate(doc, schema, v, "$") {
		t.Errorf("status %d: %s", code, e)
	}
}

// validate checks v against the subset of JSON Schema openapi.json uses.
func validate(doc, schema map[string]any, v any, at string) []string {
	if ref, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		s, ok := doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
		if !ok {
			return []string{at + ": unresolved " + ref}
		}
		return validate(doc, s, v, at)
	}
	var errs []string
	switch schema["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want object", at, v)}
		}
		props, _ := schema["properties"].(map[string]any)
		if req, ok := schema["required"].([]any); ok {
			for _, k := range req {
				if _, ok := m[k.(string)]; !ok {
					errs = append(errs, fmt.Sprintf("%s: required %q missing", at, k))
				}
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, validate(doc, ps, m[k], at+"."+k)...)
			} else if ap, ok := schema["additionalProperties"].(map[string]any); ok {
				errs = append(errs, validate(doc, ap, m[k], at+"."+k)...)
			} else if props != nil {
				errs = append(errs, fmt.Sprintf("%s: field %q is not documented", at, k))
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want array", at, v)}
		}
		for i, e := range a {
			errs = append(errs, validate(doc, schema["items"].(map[string]any), e, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case "string":
		s, ok := v.(string)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want string", at, v)}
		}
		if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, any(s)) {
			errs = append(errs, fmt.Sprintf("%s: %q not in %v", at, s, enum))
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			errs = append(errs, fmt.Sprintf("%s: %v, want integer", at, v))
		}
	case "number":
		if _, ok := v.(float64); !ok {
			errs = append(errs, fmt.Sprintf("%s: %T, want number", at, v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, fmt.Sprintf("%s: %T, want boolean", at, v))
		}
	default:
		errs = append(errs, fmt.Sprintf("%s: schema without a type", at))
	}
	return errs
}

// TestOpenAPIValidatorFails: the validator catches what it must, so
// TestOpenAPI can fail.
func TestOpenAPIValidatorFails(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	ref := map[string]any{"$ref": "#/components/schemas/Outages"}
	for _, tc := range []struct{ body, want string }{
		{`{"active":[]}`, `$: required "recent" missing`},
		{`{"active":[],"recent":[],"extra":1}`, `$: field "extra" is not documented`},
		{`{"active":[{"id":1}],"recent":[]}`, `$.active[0].id: float64, want string`},
		{`{"active":"x","recent":[]}`, `$.active: string, want array`},
	} {
		var v any
		if err := json.Unmarshal([]byte(tc.body), &v); err != nil {
			t.Fatal(err)
		}
		if errs := validate(doc, ref, v, "$"); !slices.Contains(errs, tc.want) {
			t.Errorf("%s: errors %q, want %q among them", tc.body, errs, tc.want)
		}
	}
}
