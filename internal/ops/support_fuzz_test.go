package ops

import (
	"encoding/json"
	"testing"

	"github.com/ecbridge/ecb/internal/apierr"
)

// FuzzSupportAskPayload: any payload decodes to a request or an
// invalid_argument, and the metadata that passes is a JSON object within the limit.
func FuzzSupportAskPayload(f *testing.F) {
	for _, s := range []string{
		`{"workgroup":"support","question":"q","metadata":{"email":"a@b"}}`,
		`{"workgroup":"support","metadata":[1]}`,
		`{"workgroup":"","question":1}`,
		`{"metadata":null,"workgroup":"w"}`,
		`[]`, `null`, ``, `{"metadata":"x","workgroup":"w"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var req SupportAskRequest
		if err := Decode(payload, &req); err != nil {
			if apierr.From(err).Code != apierr.InvalidArgument {
				t.Fatalf("decode error %v", err)
			}
			return
		}
		meta, err := decodeMetadata(req, 8192)
		if err != nil {
			if apierr.From(err).Code != apierr.InvalidArgument {
				t.Fatalf("metadata error %v", err)
			}
			return
		}
		if req.Workgroup == "" || len(req.Metadata) > 8192 {
			t.Fatalf("accepted %q", payload)
		}
		if meta != nil {
			if _, err := json.Marshal(meta); err != nil {
				t.Fatalf("metadata does not encode: %v", err)
			}
		}
	})
}
