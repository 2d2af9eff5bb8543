package ga467

import (
	"bytes"
	"errors"
	"testing"
)

func frames(n, size int) [][]byte {
	f := make([][]byte, n)
	for i := range f {
		f[i] = bytes.Repeat([]byte{byte(i)}, size)
	}
	return f
}

func TestEncodeCardFrames(t *testing.T) {
	tests := []struct {
		name    string
		frames  [][]byte
		wantErr bool
	}{
		{"none", nil, false},
		{"one empty frame", [][]byte{{}}, false},
		{"APDUs", [][]byte{unhex("0084000008"), unhex("1122334455667788 9000")}, false},
		{"MaxCardFrames", frames(MaxCardFrames, 10), false},
		{"too many frames", frames(MaxCardFrames+1, 0), true},
		{"MaxCardFrame", frames(1, MaxCardFrame), false},
		{"frame too large", frames(1, MaxCardFrame+1), true},
		{"largest total under MaxData", frames(7, MaxCardFrame), false},
		{"total over MaxData", frames(8, MaxCardFrame), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeCardFrames(tt.frames)
			if tt.wantErr {
				if !errors.Is(err, ErrCardFrames) {
					t.Fatalf("err = %v, want ErrCardFrames", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > MaxData {
				t.Errorf("encoded %d bytes > MaxData", len(b))
			}
			got, err := DecodeCardFrames(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.frames) {
				t.Fatalf("decoded %d frames, want %d", len(got), len(tt.frames))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.frames[i]) {
					t.Errorf("frame %d = % X, want % X", i, got[i], tt.frames[i])
				}
			}
		})
	}
}

func TestEncodeCardFramesLayout(t *testing.T) {
	got, err := EncodeCardFrames([][]byte{{0xAB}, {}})
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex("02 0100 AB 0000"); !bytes.Equal(got, want) {
		t.Errorf("got % X, want % X", got, want)
	}
}

func TestDecodeCardFramesErrors(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"too many frames", []byte{MaxCardFrames + 1}},
		{"truncated length", unhex("01 01")},
		{"length past end", unhex("01 0300 AABB")},
		{"frame too large", append(unhex("01 0104"), make([]byte, MaxCardFrame+1)...)},
		{"trailing bytes", unhex("01 0100 AA BB")},
		{"zero frames, trailing bytes", unhex("00 00")},
		{"over MaxData", append([]byte{0}, make([]byte, MaxData)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f, err := DecodeCardFrames(tt.b); !errors.Is(err, ErrCardFrames) {
				t.Errorf("DecodeCardFrames = %d frames, %v; want ErrCardFrames", len(f), err)
			}
		})
	}
}

func TestDecodeCardFramesAliasesCapped(t *testing.T) {
	b := unhex("02 0100 AA 0100 BB")
	f, err := DecodeCardFrames(b)
	if err != nil {
		t.Fatal(err)
	}
	// Appending to one frame must not overwrite the next.
	_ = append(f[0], 0xFF)
	if f[1][0] != 0xBB {
		t.Errorf("append to frame 0 overwrote frame 1")
	}
}
