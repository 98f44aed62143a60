package service

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

// connectWith connects to n with auth; the logs go to logs.
func connectWith(t *testing.T, url string, auth config.NATSAuth, logs *testenv.Buffer) error {
	t.Helper()
	nc, err := ConnectNATS(NATSConfig{Name: "test", URL: secret.NewURL(url), Auth: auth}, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		return err
	}
	defer nc.Close()
	// A round trip through the server: the connection is really usable.
	return nc.Flush()
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type authCase struct {
	name   string
	auth   config.NATSAuth
	ok     bool
	secret []string // must appear in no error or log
}

func runAuthCases(t *testing.T, url string, cases []authCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs testenv.Buffer
			err := connectWith(t, url, tc.auth, &logs)
			if (err == nil) != tc.ok {
				t.Fatalf("connect = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = false: a refused credential or certificate is bad configuration, not something to wait out", err)
			}
			for _, s := range tc.secret {
				if err != nil && strings.Contains(err.Error(), s) {
					t.Errorf("error %q holds a secret", err)
				}
				if strings.Contains(logs.String(), s) {
					t.Errorf("logs hold a secret:\n%s", logs.String())
				}
			}
		})
	}
}

// TestConnectNATSUserPassword: NATS_USER/NATS_PASSWORD against a server
// with users; a wrong password is refused as permanent, and shown nowhere.
func TestConnectNATSUserPassword(t *testing.T) {
	const pass, wrong = "userPW-s3cret-1", "userPW-wrong-2"
	n := testenv.StartNATSWith(t, func(o *natsserver.Options) {
		o.Users = []*natsserver.User{{Username: "receiver", Password: pass}}
	})
	runAuthCases(t, n.URL(), []authCase{
		{"right password", config.NATSAuth{User: "receiver", Password: secret.New(pass)}, true, []string{pass}},
		{"wrong password", config.NATSAuth{User: "receiver", Password: secret.New(wrong)}, false, []string{wrong, pass}},
		{"none", config.NATSAuth{}, false, nil},
	})
}

// TestConnectNATSNKey: NATS_NKEY_SEED against a server with nkey users; a
// seed the server does not know is refused.
func TestConnectNATSNKey(t *testing.T) {
	newUser := func() (pub string, seedFile string, seed string) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ = kp.PublicKey()
		s, _ := kp.Seed()
		return pub, writeFile(t, "user.nk", s), string(s)
	}
	pub, seedFile, seed := newUser()
	_, otherFile, otherSeed := newUser()
	n := testenv.StartNATSWith(t, func(o *natsserver.Options) {
		o.Nkeys = []*natsserver.NkeyUser{{Nkey: pub}}
	})
	runAuthCases(t, n.URL(), []authCase{
		{"known seed", config.NATSAuth{NKeySeed: seedFile}, true, []string{seed}},
		{"unknown seed", config.NATSAuth{NKeySeed: otherFile}, false, []string{otherSeed, seed}},
	})
}

// TestConnectNATSCreds: NATS_CREDS (a user JWT and seed) against a server in
// operator mode with a memory resolver: the decentralised set-up of
// Synadia's and the Helm chart's clusters.
func TestConnectNATSCreds(t *testing.T) {
	op, _ := nkeys.CreateOperator()
	opPub, _ := op.PublicKey()
	opc := jwt.NewOperatorClaims(opPub)
	opJWT, err := opc.Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	opc, err = jwt.DecodeOperatorClaims(opJWT)
	if err != nil {
		t.Fatal(err)
	}
	acc, _ := nkeys.CreateAccount()
	accPub, _ := acc.PublicKey()
	accJWT, err := jwt.NewAccountClaims(accPub).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	creds := func(signer nkeys.KeyPair) (string, string) {
		u, _ := nkeys.CreateUser()
		uPub, _ := u.PublicKey()
		uc := jwt.NewUserClaims(uPub)
		uc.IssuerAccount = accPub
		uJWT, err := uc.Encode(signer)
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := u.Seed()
		b, err := jwt.FormatUserConfig(uJWT, seed)
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, "user.creds", b), string(seed)
	}
	good, goodSeed := creds(acc)
	stranger, _ := nkeys.CreateAccount()
	bad, badSeed := creds(stranger) // signed by an account the operator never issued
	n := testenv.StartNATSWith(t, func(o *natsserver.Options) {
		o.JetStream = false // an account JWT without JetStream limits; the connection is what is tested
		o.TrustedOperators = []*jwt.OperatorClaims{opc}
		res := &natsserver.MemAccResolver{}
		if err := res.Store(accPub, accJWT); err != nil {
			t.Fatal(err)
		}
		o.AccountResolver = res
	})
	runAuthCases(t, n.URL(), []authCase{
		{"issued creds", config.NATSAuth{Creds: good}, true, []string{goodSeed}},
		{"foreign creds", config.NATSAuth{Creds: bad}, false, []string{badSeed, goodSeed}},
		{"no creds", config.NATSAuth{}, false, nil},
	})
}

// TestConnectNATSTLS: NATS_TLS_CA against a server with a certificate from
// a CA the test makes; without the CA the certificate is refused.
func TestConnectNATSTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	otherCA := testenv.NewCA(t)
	n := testenv.StartNATSWith(t, func(o *natsserver.Options) {
		o.TLSConfig, o.TLS = ca.ServerTLS(t, false), true
	})
	for _, url := range []string{n.URL(), strings.Replace(n.URL(), "nats://", "tls://", 1)} {
		runAuthCases(t, url, []authCase{
			{"our CA", config.NATSAuth{TLSCA: ca.CertFile}, true, nil},
			{"system roots", config.NATSAuth{}, false, nil},
			{"another CA", config.NATSAuth{TLSCA: otherCA.CertFile}, false, nil},
		})
	}
}

// TestConnectNATSTLSClientCert: a server that verifies client certificates
// takes NATS_TLS_CERT/NATS_TLS_KEY signed by its CA and refuses a client
// without one, or with one from another CA.
func TestConnectNATSTLSClientCert(t *testing.T) {
	ca := testenv.NewCA(t)
	otherCA := testenv.NewCA(t)
	cert, key := ca.Issue(t, "receiver")
	strangerCert, strangerKey := otherCA.Issue(t, "stranger")
	keyPEM, _ := os.ReadFile(key)
	n := testenv.StartNATSWith(t, func(o *natsserver.Options) {
		o.TLSConfig, o.TLS, o.TLSVerify = ca.ServerTLS(t, true), true, true
	})
	runAuthCases(t, n.URL(), []authCase{
		{"client cert", config.NATSAuth{TLSCA: ca.CertFile, TLSCert: cert, TLSKey: key}, true, []string{string(keyPEM)}},
		{"no client cert", config.NATSAuth{TLSCA: ca.CertFile}, false, nil},
		{"foreign client cert", config.NATSAuth{TLSCA: ca.CertFile, TLSCert: strangerCert, TLSKey: strangerKey}, false, nil},
	})
}

// TestConnectNATSTLSAndUser: TLS and a user together, as a production
// cluster is set up.
func TestConnectNATSTLSAndUser(t *testing.T) {
	const pass = "tlsUserPW-s3cret"
	ca := testenv.NewCA(t)
	n := testenv.StartNATSWith(t, func(o *natsserver.Options) {
		o.TLSConfig, o.TLS = ca.ServerTLS(t, false), true
		o.Users = []*natsserver.User{{Username: "receiver", Password: pass}}
	})
	runAuthCases(t, n.URL(), []authCase{
		{"both", config.NATSAuth{TLSCA: ca.CertFile, User: "receiver", Password: secret.New(pass)}, true, []string{pass}},
		{"TLS only", config.NATSAuth{TLSCA: ca.CertFile}, false, []string{pass}},
	})
}
