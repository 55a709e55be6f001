package sink

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// TestDecryptReadsWhatEncryptedWrote round-trips a report through age and
// checks that Decrypt refuses a wrong key and more than its limit.
func TestDecryptReadsWhatEncryptedWrote(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(key, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plain := []byte(`{"schema":1}`)
	var enc bytes.Buffer
	write := Encrypted([]age.Recipient{id.Recipient()}, func(w io.Writer) error {
		_, err := w.Write(plain)
		return err
	})
	if err := write(&enc); err != nil {
		t.Fatal(err)
	}
	if !IsEncrypted(enc.Bytes()) || IsEncrypted(plain) {
		t.Fatalf("IsEncrypted: encrypted %v, plain %v", IsEncrypted(enc.Bytes()), IsEncrypted(plain))
	}
	if int64(enc.Len()) > EncryptedSize(int64(len(plain))) {
		t.Errorf("%d bytes encrypted, more than EncryptedSize %d", enc.Len(), EncryptedSize(int64(len(plain))))
	}
	got, err := Decrypt(enc.Bytes(), key, "r.json.age", 1<<20)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Decrypt = %q, %v; want %q", got, err, plain)
	}
	if _, err := Decrypt(enc.Bytes(), key, "r.json.age", int64(len(plain))-1); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Decrypt past the limit: %v", err)
	}
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "wrong.txt")
	if err := os.WriteFile(wrong, []byte(other.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Decrypt(enc.Bytes(), wrong, "r.json.age", 1<<20); err == nil || !strings.Contains(err.Error(), "decrypt report r.json.age") {
		t.Errorf("Decrypt with a wrong identity: %v", err)
	}
}
