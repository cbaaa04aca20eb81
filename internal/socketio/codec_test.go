package socketio

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

var eioPayloadCases = []struct {
	in   string
	want []eioPacket
	ok   bool
}{
	{"4hello", []eioPacket{{typ: eioMessage, data: []byte("hello")}}, true},
	{"4test1\x1e4test2\x1e3", []eioPacket{{typ: eioMessage, data: []byte("test1")}, {typ: eioMessage, data: []byte("test2")}, {typ: eioPong, data: []byte{}}}, true},
	{"4hello\x1ebAQIDBA==", []eioPacket{{typ: eioMessage, data: []byte("hello")}, {typ: eioMessage, binary: true, data: []byte{1, 2, 3, 4}}}, true},
	{"b", []eioPacket{{typ: eioMessage, binary: true, data: []byte{}}}, true},
	{"4", []eioPacket{{typ: eioMessage, data: []byte{}}}, true},
	{"1", []eioPacket{{typ: eioClose, data: []byte{}}}, true},
	{"", nil, false},
	{"abc", nil, false},
	{"7x", nil, false},
	{"4a\x1e", nil, false},
	{"\x1e4a", nil, false},
	{"b!!!", nil, false},
	{"4a\x1ebAQ", nil, false},
	{"4caf\xc3\xa9", []eioPacket{{typ: eioMessage, data: []byte("caf\u00e9")}}, true},
	{"4a\xffb", nil, false},       // not UTF-8
	{"4ok\x1e4\xc3", nil, false},  // truncated UTF-8 sequence
	{"4\xed\xa0\x80", nil, false}, // an encoded surrogate
}

func TestDecodePollingPayload(t *testing.T) {
	for _, tc := range eioPayloadCases {
		got, err := decodePollingPayload([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if !tc.ok {
			continue
		}
		if len(got) != len(tc.want) {
			t.Fatalf("%q: %d packets", tc.in, len(got))
		}
		for i := range got {
			if got[i].typ != tc.want[i].typ || got[i].binary != tc.want[i].binary || !bytes.Equal(got[i].data, tc.want[i].data) {
				t.Errorf("%q[%d]: %+v want %+v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

func TestPollingFrameRoundTrip(t *testing.T) {
	frames := []frame{{typ: eioMessage, data: []byte("hi")}, {typ: eioMessage, bin: true, data: []byte{0, 255}}, {typ: eioPing}}
	var body []byte
	for i, f := range frames {
		if i > 0 {
			body = append(body, recordSeparator)
		}
		n := len(body)
		body = appendPollingFrame(body, f)
		if len(body)-n != pollingFrameLen(f) {
			t.Fatalf("pollingFrameLen(%v) = %d, appended %d", f, pollingFrameLen(f), len(body)-n)
		}
	}
	if string(body) != "4hi\x1ebAP8=\x1e2" {
		t.Fatalf("body %q", body)
	}
	pkts, err := decodePollingPayload(body)
	if err != nil || len(pkts) != 3 || !pkts[1].binary || !bytes.Equal(pkts[1].data, []byte{0, 255}) {
		t.Fatalf("%v %+v", err, pkts)
	}
}

func TestAppendWSHeader(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 20} {
		h := appendWSHeader(nil, 1, n)
		var got int
		switch len(h) {
		case 2:
			got = int(h[1])
		case 4:
			got = int(h[2])<<8 | int(h[3])
		case 10:
			for _, b := range h[2:] {
				got = got<<8 | int(b)
			}
		}
		if h[0] != 0x81 || got != n {
			t.Errorf("n=%d: % x", n, h)
		}
	}
}

var sioCases = []struct {
	in   string
	ok   bool
	want sioPacket // typ, attachments, nsp, id checked
	args int
}{
	{"0", true, sioPacket{typ: sioConnect, nsp: "/", id: -1}, 0},
	{`0{"token":"123"}`, true, sioPacket{typ: sioConnect, nsp: "/", id: -1}, 0},
	{"0/admin,", true, sioPacket{typ: sioConnect, nsp: "/admin", id: -1}, 0},
	{"0/admin", true, sioPacket{typ: sioConnect, nsp: "/admin", id: -1}, 0},
	{`0/admin,{"a":1}`, true, sioPacket{typ: sioConnect, nsp: "/admin", id: -1}, 0},
	{"1", true, sioPacket{typ: sioDisconnect, nsp: "/", id: -1}, 0},
	{"1/admin,", true, sioPacket{typ: sioDisconnect, nsp: "/admin", id: -1}, 0},
	{`2["foo",1]`, true, sioPacket{typ: sioEvent, nsp: "/", id: -1}, 2},
	{`2/admin,12["foo"]`, true, sioPacket{typ: sioEvent, nsp: "/admin", id: 12}, 1},
	{`2456["foo",{"a":[1]}]`, true, sioPacket{typ: sioEvent, nsp: "/", id: 456}, 2},
	{`2[1,2]`, true, sioPacket{typ: sioEvent, nsp: "/", id: -1}, 2},
	{`3456[1,"2"]`, true, sioPacket{typ: sioAck, nsp: "/", id: 456}, 2},
	{`3/admin,1[]`, true, sioPacket{typ: sioAck, nsp: "/admin", id: 1}, 0},
	{`51-["foo",{"_placeholder":true,"num":0}]`, true, sioPacket{typ: sioBinaryEvent, attachments: 1, nsp: "/", id: -1}, 2},
	{`52-/admin,7["foo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, true, sioPacket{typ: sioBinaryEvent, attachments: 2, nsp: "/admin", id: 7}, 3},
	{`52-["foo",{"a":[{"num":1,"_placeholder":true}]},{"_placeholder":true,"num":0}]`, true, sioPacket{typ: sioBinaryEvent, attachments: 2, nsp: "/", id: -1}, 3},
	{`51-["foo",{"\u005fplaceholder":true,"num":0}]`, true, sioPacket{typ: sioBinaryEvent, attachments: 1, nsp: "/", id: -1}, 2},
	{`61-9[{"_placeholder":true,"num":0}]`, true, sioPacket{typ: sioBinaryAck, attachments: 1, nsp: "/", id: 9}, 1},
	{`50-["foo"]`, true, sioPacket{typ: sioBinaryEvent, nsp: "/", id: -1}, 1},
	{`51-["foo",{"_placeholder":false,"num":9},{"_placeholder":true,"num":0}]`, true, sioPacket{typ: sioBinaryEvent, attachments: 1, nsp: "/", id: -1}, 3},
	{`51-["foo",{"s":"{\"_placeholder\":true,\"num\":7}"},{"_placeholder":true,"num":0}]`, true, sioPacket{typ: sioBinaryEvent, attachments: 1, nsp: "/", id: -1}, 3},
	// In a non-binary packet a placeholder is plain data (socket.io-parser
	// reconstructs binary packets only).
	{`2["foo",{"_placeholder":true,"num":5}]`, true, sioPacket{typ: sioEvent, nsp: "/", id: -1}, 2},
	{`31[{"_placeholder":true,"num":0}]`, true, sioPacket{typ: sioAck, nsp: "/", id: 1}, 1},
	// Placeholders that do not match the declared attachments (issue 11, 5).
	{`50-1["getThreads",{"_placeholder":true,"num":5}]`, false, sioPacket{}, 0},
	{`50-["foo",{"_placeholder":true,"num":0}]`, false, sioPacket{}, 0},
	{`51-["foo",{"_placeholder":true,"num":1}]`, false, sioPacket{}, 0},
	{`51-["foo"]`, false, sioPacket{}, 0},
	{`52-["foo",{"_placeholder":true,"num":0}]`, false, sioPacket{}, 0},
	{`52-["foo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]`, false, sioPacket{}, 0},
	{`51-["foo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]`, false, sioPacket{}, 0},
	{`51-["foo",{"_placeholder":true,"num":"0"}]`, false, sioPacket{}, 0},
	{`51-["foo",{"_placeholder":true,"num":0.0}]`, false, sioPacket{}, 0},
	{`51-["foo",{"_placeholder":true,"num":-0}]`, false, sioPacket{}, 0},
	{`51-["foo",{"_placeholder":true}]`, false, sioPacket{}, 0},
	{`51-["foo",{"_placeholder":true,"num":0,"x":1}]`, false, sioPacket{}, 0},
	{`51-["foo",{"_placeholder":true,"num":0,"num":0}]`, false, sioPacket{}, 0},
	{`51-["foo",{"_placeholder":true,"data":"AQ=="}]`, false, sioPacket{}, 0},
	{`60-1[{"_placeholder":true,"num":0}]`, false, sioPacket{}, 0},
	{"", false, sioPacket{}, 0},
	{"7", false, sioPacket{}, 0},
	{"abc", false, sioPacket{}, 0},
	{"4abc", false, sioPacket{}, 0},
	{`4{"message":"x"}`, false, sioPacket{}, 0}, // CONNECT_ERROR from a client
	{"42{}", false, sioPacket{}, 0},
	{"2{}", false, sioPacket{}, 0},
	{"2[]", false, sioPacket{}, 0},
	{`2abc["foo"]`, false, sioPacket{}, 0},
	{`2["connect"]`, false, sioPacket{}, 0},
	{`2["disconnect"]`, false, sioPacket{}, 0},
	{`2[{}]`, false, sioPacket{}, 0},
	{`2["foo"`, false, sioPacket{}, 0},
	{`0[1]`, false, sioPacket{}, 0},
	{`0"x"`, false, sioPacket{}, 0},
	{`01`, false, sioPacket{}, 0},
	{`1x`, false, sioPacket{}, 0},
	{`3["no id"]`, false, sioPacket{}, 0},
	{`31{}`, false, sioPacket{}, 0},
	{`5["foo"]`, false, sioPacket{}, 0},
	{`5x-["foo"]`, false, sioPacket{}, 0},
	{`5999-["foo"]`, false, sioPacket{}, 0},
	{`299999999999999999999["foo"]`, false, sioPacket{}, 0},
}

func TestDecodeSIO(t *testing.T) {
	for _, tc := range sioCases {
		p, err := decodeSIO([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if !tc.ok {
			continue
		}
		if p.typ != tc.want.typ || p.attachments != tc.want.attachments || p.nsp != tc.want.nsp || p.id != tc.want.id || len(p.args) != tc.args {
			t.Errorf("%q: got typ=%d att=%d nsp=%q id=%d args=%d", tc.in, p.typ, p.attachments, p.nsp, p.id, len(p.args))
		}
	}
}

func TestAppendSIOHeader(t *testing.T) {
	cases := []struct {
		typ  byte
		att  int
		nsp  string
		id   int64
		want string
	}{
		{sioConnect, 0, "/", -1, "0"},
		{sioConnect, 0, "/admin", -1, "0/admin,"},
		{sioEvent, 0, "/", 12, "212"},
		{sioBinaryAck, 2, "/x", 3, "62-/x,3"},
	}
	for _, c := range cases {
		if got := string(appendSIOHeader(nil, c.typ, c.att, c.nsp, c.id)); got != c.want {
			t.Errorf("got %q want %q", got, c.want)
		}
	}
}

func TestEncodeEvent(t *testing.T) {
	got, err := EncodeEvent("/", "message", map[string]any{"a": "<b>"}, 1, nil)
	if err != nil || string(got) != `2["message",{"a":"<b>"},1,null]` {
		t.Fatalf("%q %v", got, err)
	}
	got, _ = EncodeEvent("/chat", "m")
	if string(got) != `2/chat,["m"]` {
		t.Fatalf("%q", got)
	}
	if _, err := EncodeEvent("/", "m", Binary{1}); err != ErrBinaryEncoded {
		t.Fatalf("binary: %v", err)
	}
	if _, err := EncodeEvent("/", "connect"); err != ErrReservedEvent {
		t.Fatalf("reserved: %v", err)
	}
	if _, err := EncodeEvent("/", "m", func() {}); err == nil {
		t.Fatal("unencodable arg accepted")
	}
}

func TestEncodePacketBinary(t *testing.T) {
	type msg struct {
		Name string `json:"name"`
		Blob Binary `json:"blob"`
	}
	frames, err := encodePacket(sioEvent, "/", 5, true, "up", []any{Binary{1, 2}, msg{"x", Binary{3}}, json.RawMessage(`{"_placeholder":true,"data":"BA=="}`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 4 {
		t.Fatalf("%d frames", len(frames))
	}
	want := `53-5["up",{"_placeholder":true,"num":0},{"name":"x","blob":{"_placeholder":true,"num":1}},{"_placeholder":true,"num":2}]`
	if string(frames[0].data) != want {
		t.Fatalf("got %s", frames[0].data)
	}
	for i, w := range [][]byte{{1, 2}, {3}, {4}} {
		if !frames[i+1].bin || !bytes.Equal(frames[i+1].data, w) {
			t.Fatalf("attachment %d: %+v", i, frames[i+1])
		}
	}
}

func TestReplacePlaceholders(t *testing.T) {
	atts := [][]byte{{1, 2, 3}, {4}}
	cases := []struct{ in, want string }{
		{`{"_placeholder":true,"num":0}`, `{"_placeholder":true,"data":"AQID"}`},
		{`{"a":[{"_placeholder":true,"num":1}],"s":"{\"_placeholder\":true,\"num\":0}"}`, `{"a":[{"_placeholder":true,"data":"BA=="}],"s":"{\"_placeholder\":true,\"num\":0}"}`},
		{`{ "num" : 1 , "_placeholder" : true }`, `{"_placeholder":true,"data":"BA=="}`},
		{`{"_placeholder":false,"num":0}`, `{"_placeholder":false,"num":0}`},
		{`[{"x":{"_placeholder":true,"num":1}},{"_placeholder":true,"num":0}]`, `[{"x":{"_placeholder":true,"data":"BA=="}},{"_placeholder":true,"data":"AQID"}]`},
		{`"plain"`, `"plain"`},
	}
	for _, c := range cases {
		got, err := replacePlaceholders([]byte(c.in), atts)
		if err != nil || string(got) != c.want {
			t.Errorf("%s: %s %v", c.in, got, err)
		}
	}
	for _, bad := range []string{`{"_placeholder":true,"num":2}`, `{"_placeholder":true,"num":-1}`, `{"_placeholder":true,"num":"x"}`,
		`{"_placeholder":true,"num":0,"x":1}`, `{"_placeholder":true,"num":0,"x":{}}`, `{"_placeholder":true}`, `{"_placeholder":true,"num":0}x`} {
		if _, err := replacePlaceholders([]byte(bad), atts); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestBinaryJSON(t *testing.T) {
	b, _ := json.Marshal(Binary{1, 2, 3})
	if string(b) != `{"_placeholder":true,"data":"AQID"}` {
		t.Fatalf("%s", b)
	}
	var got Binary
	if err := json.Unmarshal(b, &got); err != nil || !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("%v %v", got, err)
	}
	if err := json.Unmarshal([]byte(`"AQID"`), &got); err != nil || !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("base64 string: %v %v", got, err)
	}
	if err := json.Unmarshal([]byte(`{"a":1}`), &got); err == nil {
		t.Fatal("non-binary accepted")
	}
	if v, ok := BinaryArg(b); !ok || !bytes.Equal(v, []byte{1, 2, 3}) {
		t.Fatal("BinaryArg")
	}
	if _, ok := BinaryArg(json.RawMessage(`"x"`)); ok {
		t.Fatal("BinaryArg on a string")
	}
	text, atts, err := extractBinary([]byte(`[` + string(b) + `,` + string(b) + `]`))
	if err != nil || string(text) != `[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]` || len(atts) != 2 {
		t.Fatalf("%s %v %v", text, atts, err)
	}
	if !reflect.DeepEqual(atts[1], []byte{1, 2, 3}) {
		t.Fatal(atts)
	}
}

func TestConnectErrorPayload(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&ConnectError{Message: "unauthorized"}, `{"message":"unauthorized"}`},
		{&ConnectError{Message: "no", Data: map[string]int{"code": 1}}, `{"message":"no","data":{"code":1}}`},
		{errString("plain"), `{"message":"plain"}`},
		{&ConnectError{Message: "bad data", Data: func() {}}, `{"message":"bad data"}`},
	}
	for _, c := range cases {
		if got := string(connectErrorPayload(c.err)); got != c.want {
			t.Errorf("got %s want %s", got, c.want)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func FuzzDecodePollingPayload(f *testing.F) {
	for _, tc := range eioPayloadCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pkts, err := decodePollingPayload(data)
		if err != nil {
			return
		}
		// Re-encoding what was decoded gives a payload that decodes the same.
		var body []byte
		for i, p := range pkts {
			if i > 0 {
				body = append(body, recordSeparator)
			}
			body = appendPollingFrame(body, frame{typ: p.typ, bin: p.binary, data: p.data})
		}
		again, err := decodePollingPayload(body)
		if err != nil || len(again) != len(pkts) {
			t.Fatalf("re-decode of %q: %v", body, err)
		}
		for i := range again {
			if again[i].typ != pkts[i].typ || !bytes.Equal(again[i].data, pkts[i].data) {
				t.Fatalf("packet %d differs", i)
			}
		}
	})
}

func FuzzDecodeEIOText(f *testing.F) {
	for _, s := range []string{"4hello", "2probe", "3", "5", "6", "0{}", "", "x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeEIOText(data)
		if err == nil && (p.typ < eioOpen || p.typ > eioNoop || len(p.data) != len(data)-1) {
			t.Fatalf("bad packet %+v", p)
		}
	})
}

func FuzzDecodeSIO(f *testing.F) {
	for _, tc := range sioCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeSIO(data)
		if err != nil {
			return
		}
		if p.typ > sioBinaryAck || p.attachments < 0 || p.attachments > maxAttachments || p.id > maxAckID {
			t.Fatalf("bad packet %+v", p)
		}
		if (p.typ == sioEvent || p.typ == sioBinaryEvent) && len(p.args) == 0 {
			t.Fatalf("event without name")
		}
		// A decoded binary packet has one placeholder per declared
		// attachment, each below the count, and its arguments can be
		// reassembled with that many attachments into valid JSON.
		atts := make([][]byte, p.attachments)
		for i := range atts {
			atts[i] = []byte{byte(i)}
		}
		if p.typ != sioBinaryEvent && p.typ != sioBinaryAck {
			return // placeholders are plain data there
		}
		holders := 0
		for _, a := range p.args {
			phs, err := findPlaceholders(a, nil)
			if err != nil {
				t.Fatalf("accepted packet %q has a bad argument %s: %v", data, a, err)
			}
			for _, ph := range phs {
				if ph.num >= p.attachments {
					t.Fatalf("%q: placeholder %d of %d attachments", data, ph.num, p.attachments)
				}
			}
			holders += len(phs)
			out, err := replacePlaceholders(a, atts)
			if err != nil || !json.Valid(out) {
				t.Fatalf("%q: reassembly of %s: %q %v", data, a, out, err)
			}
		}
		if holders != p.attachments {
			t.Fatalf("%q: %d placeholders for %d attachments", data, holders, p.attachments)
		}
	})
}

func FuzzReplacePlaceholders(f *testing.F) {
	for _, s := range []string{`{"_placeholder":true,"num":0}`, `[{"_placeholder":true,"num":1},"x"]`, `{"a":"{\"_placeholder\":true}"}`, `{`,
		`{"\u005fplaceholder":true,"num":1}`, `{"_placeholder":true,"num":0,"x":1}`, `[{"a":{"_placeholder":true,"num":0}},{"_placeholder":false}]`,
		`{"_placeholder":true,"num":07}`, `[1,[2,[3,{"k":null}]]]`, `{"_placeholder":true,"num":0}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := replacePlaceholders(data, [][]byte{{1, 2}, {3}})
		if err != nil {
			return
		}
		if json.Valid(data) && !json.Valid(out) {
			t.Fatalf("valid %q became invalid %q", data, out)
		}
		if json.Valid(data) && bytes.Equal(out, data) && bytes.Contains(out, []byte(`"_placeholder":true,"num"`)) {
			// Unchanged text with a placeholder-looking member must be inside a
			// string or beside other members.
			var v any
			_ = json.Unmarshal(data, &v)
			if isPlaceholderValue(v) {
				t.Fatalf("placeholder left in %q", data)
			}
		}
	})
}

// isPlaceholderValue reports whether v (decoded JSON) holds, at any depth, an
// object with exactly the members _placeholder: true and a numeric num.
func isPlaceholderValue(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 2 && v["_placeholder"] == true {
			if _, ok := v["num"].(float64); ok {
				return true
			}
		}
		for _, x := range v {
			if isPlaceholderValue(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if isPlaceholderValue(x) {
				return true
			}
		}
	}
	return false
}
