package spawn

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// Security says how a host or client authenticates the gateway and itself.
//
// Each field left empty is read from its environment variable when the
// host or client is created (TLSCA: SPAWN_TLS_CA, TLSCert: SPAWN_TLS_CERT,
// TLSKey: SPAWN_TLS_KEY, TLSServerName: SPAWN_TLS_SERVER_NAME, Token:
// SPAWN_TOKEN); NoEnv turns that off. With a CA (a PEM file) the channel is
// TLS: the gateway's certificate must chain to it and name the target's host
// (or TLSServerName). With a certificate and key too it is mutual TLS, as a
// gateway started with --tls-client-ca requires. Without a CA it is
// plaintext. The files are read once, at create. The token travels as
// `authorization: Bearer <token>` in the metadata of every call and of the
// host's stream; it is never logged.
type Security struct {
	TLSCA         string // PEM file of the CA certificate(s) that sign the gateway's certificate
	TLSCert       string // PEM file of this process's certificate (chain); needs TLSKey and TLSCA
	TLSKey        string // PEM file of its private key
	TLSServerName string // the name the gateway's certificate must carry
	Token         string // bearer token (printable ASCII)
	NoEnv         bool   // do not read the SPAWN_* environment variables
}

// maxPEMBytes: a PEM file is small; anything larger is not one.
const maxPEMBytes = 1 << 20

// dialer is what a client or host dials with; fixed at create.
type dialer struct {
	target string
	opts   []grpc.DialOption
	auth   string // "Bearer ..." or ""
	tls    bool
}

func pick(v, env string, noEnv bool) string {
	if v == "" && !noEnv {
		return os.Getenv(env)
	}
	return v
}

func readPEM(what, path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the TLS %s file %s: %v", what, path, err)
	}
	if st.Size() > maxPEMBytes {
		return nil, fmt.Errorf("cannot read the TLS %s file %s: larger than 1 MiB", what, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the TLS %s file %s: %v", what, path, err)
	}
	if !bytes.Contains(data, []byte("-----BEGIN ")) {
		return nil, fmt.Errorf("cannot read the TLS %s file %s: no PEM block in it", what, path)
	}
	return data, nil
}

// serviceConfig: round robin over every address a target resolves to (any
// member of a cluster serves any call).
const serviceConfig = `{"loadBalancingConfig":[{"round_robin":{}}]}`

const maxGateways = 64

var listSeq int64

// newDialer resolves sec and target into what to dial with.
//
// target is any gRPC target ("127.0.0.1:8090", "dns:///gw:8090",
// "unix:/run/spawn.sock") or a list of numeric gateway addresses
// "10.0.0.1:8090,10.0.0.2:8090" (one family): calls go round robin over the
// members reached.
func newDialer(target string, sec Security) (*dialer, error) {
	if target == "" {
		return nil, fmt.Errorf("the gateway target is empty")
	}
	ca := pick(sec.TLSCA, "SPAWN_TLS_CA", sec.NoEnv)
	cert := pick(sec.TLSCert, "SPAWN_TLS_CERT", sec.NoEnv)
	key := pick(sec.TLSKey, "SPAWN_TLS_KEY", sec.NoEnv)
	name := pick(sec.TLSServerName, "SPAWN_TLS_SERVER_NAME", sec.NoEnv)
	token := pick(sec.Token, "SPAWN_TOKEN", sec.NoEnv)
	for i := 0; i < len(token); i++ {
		if token[i] < 0x20 || token[i] > 0x7e {
			return nil, fmt.Errorf("the bearer token holds characters outside printable ASCII")
		}
	}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("a TLS client certificate needs its key and a key its certificate (TLSCert/SPAWN_TLS_CERT, TLSKey/SPAWN_TLS_KEY)")
	}
	if (cert != "" || name != "") && ca == "" {
		return nil, fmt.Errorf("a TLS client certificate or server name needs the gateway's CA (TLSCA/SPAWN_TLS_CA)")
	}
	d := &dialer{target: target}
	if token != "" {
		d.auth = "Bearer " + token
	}
	d.opts = append(d.opts, grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(Codec{})))
	if ca != "" {
		pem, err := readPEM("CA", ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cannot read the TLS CA file %s: no certificate in it", ca)
		}
		cfg := &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12}
		if cert != "" {
			cp, err := readPEM("certificate", cert)
			if err != nil {
				return nil, err
			}
			kp, err := readPEM("key", key)
			if err != nil {
				return nil, err
			}
			pair, err := tls.X509KeyPair(cp, kp)
			if err != nil {
				return nil, fmt.Errorf("cannot use the TLS certificate %s with key %s: %v", cert, key, err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		d.tls = true
		d.opts = append(d.opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	} else {
		d.opts = append(d.opts, grpc.WithInsecure())
	}
	if err := d.list(target, name != ""); err != nil {
		return nil, err
	}
	return d, nil
}

// list turns a list of gateway addresses into a manual resolver of its own.
func (d *dialer) list(target string, serverName bool) error {
	body := target
	if strings.HasPrefix(target, "ipv4:") || strings.HasPrefix(target, "ipv6:") {
		body = target[5:]
	} else if !strings.Contains(target, ",") || strings.Contains(target, "://") ||
		strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "dns:") {
		return nil
	}
	entries := strings.Split(body, ",")
	if len(entries) > maxGateways {
		return fmt.Errorf("gateway list %q has more than %d entries", target, maxGateways)
	}
	addrs := make([]resolver.Address, 0, len(entries))
	hosts := map[string]bool{}
	fam := 0
	for i, e := range entries {
		e = strings.TrimSpace(e)
		host, port, err := net.SplitHostPort(e)
		ip := net.ParseIP(host)
		p, perr := strconv.Atoi(port)
		if err != nil || ip == nil || perr != nil || p < 1 || p > 65535 {
			return fmt.Errorf("gateway list %q: entry %d is not a numeric HOST:PORT", target, i+1)
		}
		f := 6
		if ip.To4() != nil {
			f = 4
		}
		if fam != 0 && f != fam {
			return fmt.Errorf("gateway list %q mixes IPv4 and IPv6 addresses", target)
		}
		fam = f
		hosts[host] = true
		addrs = append(addrs, resolver.Address{Addr: e})
	}
	if d.tls && !serverName && len(hosts) > 1 {
		return fmt.Errorf("gateway list %q: with TLS, addresses on different hosts need TLSServerName (SPAWN_TLS_SERVER_NAME)", target)
	}
	r := manual.NewBuilderWithScheme(fmt.Sprintf("spawnlist%d", atomic.AddInt64(&listSeq, 1)))
	r.InitialState(resolver.State{Addresses: addrs})
	d.target = r.Scheme() + ":///" + strings.TrimSpace(entries[0])
	d.opts = append(d.opts, grpc.WithResolvers(r), grpc.WithAuthority(strings.TrimSpace(entries[0])))
	return nil
}

// withToken adds the bearer token (when there is one) to ctx's outgoing metadata.
func (d *dialer) withToken(ctx context.Context) context.Context {
	if d.auth == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", d.auth)
}
