package spawn

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eigr/go-support/eigr/actors"
	"github.com/eigr/go-support/eigr/protocol"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"spawn-gateway/go/pb/gatewayv1"
)

// ConnectMethod is the host stream's full method name.
const ConnectMethod = "/spawn.gateway.v1.HostGateway/Connect"

// Version of this runtime, sent in the registration's ServiceInfo.
const (
	Version     = "0.1.0"
	LibraryName = "spawn-gateway-go-sdk"
)

// The batched host link (docs/protocol.md, "Batched host link").
const (
	LinkMDKey   = "spawn-link"
	LinkMDBatch = "batch"
	BatchMax    = 128       // results in one ResultBatch
	BatchBytes  = 256 << 10 // bytes of one ResultBatch
)

// DefaultMaxMessageBytes is the gateway's default --max-message-bytes.
const DefaultMaxMessageBytes = 4 << 20

// DefaultChannelAction is the action a channel subscription delivers to when
// it names none (Spawn's default).
const DefaultChannelAction = "receive"

// Kinds of actors (spawn.actors.Kind).
const (
	Named   = actors.Kind_NAMED
	Unnamed = actors.Kind_UNNAMED
	Pooled  = actors.Kind_POOLED
)

// Handler runs one action. It returns the reply (nil: Noop; an *anypb.Any is
// sent as it is) or an error: an *Error (Errorf) fails the call with its
// code, any other error with UNKNOWN. The new state goes through
// ctx.SetState. A panic fails the call with UNKNOWN.
type Handler func(ctx *Context) (proto.Message, error)

// Channel is a broadcast subscription: a topic and the action it delivers to
// (empty: "receive").
type Channel struct {
	Topic  string
	Action string
}

// ActorDef is an actor this host serves.
type ActorDef struct {
	Name    string             // for UNNAMED actors: the template's name
	Actions map[string]Handler // action name -> handler
	Kind    actors.Kind        // default NAMED
	// Stateless: the gateway keeps no state (POOLED actors are always
	// stateless). Default: stateful.
	Stateless bool
	// StateType is the state's message name ("pkg.State") or type URL.
	StateType string
	// Snapshot interval and idle time before deactivation (0: the gateway's).
	Snapshot, Deactivate time.Duration
	// Timers: action name -> period: while the actor is active the gateway
	// runs that action every period with its state (FixedTimerAction; the
	// wire field `seconds` holds milliseconds, as in Spawn).
	Timers   map[string]time.Duration
	MinPool  int32
	MaxPool  int32
	Channels []Channel
}

// HostOptions configure a Host. The zero value is usable.
type HostOptions struct {
	Security
	ServiceName         string        // ServiceInfo.service_name; default: the system's name
	MinBackoff          time.Duration // first reconnect delay; default 15 ms
	MaxBackoff          time.Duration // longest reconnect delay; default 2 s
	RegistrationTimeout time.Duration // wait for the registration answer; default 10 s
	// MaxMessageBytes: the gateway's --max-message-bytes (default 4 MiB). A
	// result over it fails that call with RESOURCE_EXHAUSTED instead of the
	// whole stream.
	MaxMessageBytes int
	// MaxInflight bounds the handlers running at once (default 1024): past
	// it the host stops reading tasks until one finishes (the gateway's
	// stream flow control holds the rest), so the results queue is bounded.
	MaxInflight int
	// NoBatch: do not ask for the batched link.
	NoBatch bool
	// Log receives the host's log lines; nil: warnings and errors on stderr
	// (level from $SPAWN_GO_LOG: debug, info, warn, error, silent).
	Log func(level, msg string)
	// OnRegistered is called after each successful registration.
	OnRegistered func(h *Host)
	DialOptions  []grpc.DialOption
}

type actorEntry struct {
	def ActorDef
}

// Host is an actor host: it connects to the gateway, registers its actors
// and runs their actions, many in flight, reconnecting with exponential
// backoff and jitter whenever the stream ends.
//
// One stream's states (session):
//
//	DIALING ------ stream opened ----------> REGISTERING [registration, then contracts, queued]
//	REGISTERING -- registration OK --------> SERVING     [batched link if granted; Registered()]
//	REGISTERING -- refused / no answer in
//	               RegistrationTimeout ----> CLOSED
//	SERVING ------ task(s) ----------------> SERVING     [a goroutine per task, at most
//	                                                     MaxInflight; results queue in order
//	                                                     of completion, one write at a time]
//	SERVING ------ stream ends / Stop -----> CLOSED      [results not written are dropped;
//	                                                     handlers' contexts are done]
//	CLOSED ------- backoff ----------------> DIALING     (until Stop or Run's ctx ends)
//
// Invariants: 1. one message is written at a time (the writer goroutine);
// 2. the results queue holds at most MaxInflight results (a task starts
// only when a slot is free); 3. no result of one stream is written on
// another.
type Host struct {
	target, system string
	o              HostOptions
	d              *dialer

	mu        sync.Mutex
	actors    map[string]*actorEntry
	contracts [][]byte
	reg       bool
	regCh     chan struct{} // closed while registered
	regs      int
	info      *protocol.ProxyInfo
	cancel    context.CancelFunc
	done      chan struct{}
	inflight  sync.WaitGroup
	stats     counters
}

// counters of the host link (atomics).
type counters struct {
	batched                    int32
	results, messages, batches uint64
}

// HostStats: what the host link carried so far.
type HostStats struct {
	Batched  bool   // the gateway granted the batched link on the current (last) stream
	Results  uint64 // results sent
	Messages uint64 // messages written (registrations and contracts included)
	Batches  uint64 // of which ResultBatches
}

// Stats reads the host link's counters.
func (h *Host) Stats() HostStats {
	return HostStats{Batched: atomic.LoadInt32(&h.stats.batched) == 1,
		Results: atomic.LoadUint64(&h.stats.results), Messages: atomic.LoadUint64(&h.stats.messages),
		Batches: atomic.LoadUint64(&h.stats.batches)}
}

// NewHost makes a host of actor system `system` for the gateway at target
// (as NewClient's). Add actors, then Start or Run.
func NewHost(target, system string, o HostOptions) (*Host, error) {
	if system == "" {
		return nil, fmt.Errorf("the actor system's name is empty")
	}
	d, err := newDialer(target, o.Security)
	if err != nil {
		return nil, err
	}
	if o.ServiceName == "" {
		o.ServiceName = system
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 15 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = 2 * time.Second
		if o.MaxBackoff < o.MinBackoff {
			o.MaxBackoff = o.MinBackoff
		}
	}
	if o.RegistrationTimeout <= 0 {
		o.RegistrationTimeout = 10 * time.Second
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 1024
	}
	if o.Log == nil {
		o.Log = stderrLog()
	}
	return &Host{target: target, system: system, o: o, d: d, actors: map[string]*actorEntry{},
		regCh: make(chan struct{})}, nil
}

var logLevels = []string{"debug", "info", "warn", "error"}

func stderrLog() func(level, msg string) {
	want := strings.ToLower(os.Getenv("SPAWN_GO_LOG"))
	min := 2
	for i, l := range logLevels {
		if l == want {
			min = i
		}
	}
	if want == "silent" {
		min = len(logLevels)
	}
	return func(level, msg string) {
		for i, l := range logLevels {
			if l == level && i >= min {
				fmt.Fprintf(os.Stderr, "spawn-host %s: %s\n", level, msg)
			}
		}
	}
}

// System is the actor system's name.
func (h *Host) System() string { return h.system }

// AddContract sends the descriptors of a contract this host serves (a
// serialized google.protobuf.FileDescriptorSet) right after each
// registration: the gateway then serves the contract's actors as plain gRPC
// services and by reflection. The generated Register functions call it.
func (h *Host) AddContract(set []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(set) == 0 {
		return
	}
	for _, c := range h.contracts {
		if string(c) == string(set) {
			return
		}
	}
	h.contracts = append(h.contracts, append([]byte(nil), set...))
}

// AddActor serves def; takes effect at the next registration (add actors
// before Start).
func (h *Host) AddActor(def ActorDef) error {
	if def.Name == "" {
		return fmt.Errorf("the actor's name is empty")
	}
	if len(def.Actions) == 0 && len(def.Timers) == 0 {
		return fmt.Errorf("actor %s has no actions", def.Name)
	}
	for a, f := range def.Actions {
		if f == nil {
			return fmt.Errorf("the handler of %s.%s is nil", def.Name, a)
		}
	}
	if def.Kind == 0 {
		def.Kind = Named
	}
	def.StateType = strings.TrimPrefix(def.StateType, ".")
	for a, p := range def.Timers {
		if def.Actions[a] == nil {
			return fmt.Errorf("%s: timer %s has no handler", def.Name, a)
		}
		if p < time.Millisecond {
			return fmt.Errorf("%s: timer %s must have a period of at least 1 ms", def.Name, a)
		}
	}
	chans := make([]Channel, 0, len(def.Channels))
	for _, c := range def.Channels {
		if c.Topic == "" {
			return fmt.Errorf("%s: a channel has no topic", def.Name)
		}
		if c.Action == "" {
			c.Action = DefaultChannelAction
		}
		if def.Actions[c.Action] == nil {
			return fmt.Errorf("%s: channel %q delivers to %q, which is not one of its actions", def.Name, c.Topic, c.Action)
		}
		chans = append(chans, c)
	}
	def.Channels = chans
	h.mu.Lock()
	h.actors[def.Name] = &actorEntry{def: def}
	h.mu.Unlock()
	return nil
}

// RegistrationRequest is the spawn.RegistrationRequest this host sends.
func (h *Host) RegistrationRequest() *protocol.RegistrationRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	reg := &actors.Registry{Actors: map[string]*actors.Actor{}}
	for name, e := range h.actors {
		d := e.def
		s := &actors.ActorSettings{Kind: d.Kind, Stateful: !d.Stateless && d.Kind != Pooled,
			StateType: d.StateType, MinPoolSize: d.MinPool, MaxPoolSize: d.MaxPool}
		if d.Snapshot > 0 {
			s.SnapshotStrategy = &actors.ActorSnapshotStrategy{Strategy: &actors.ActorSnapshotStrategy_Timeout{
				Timeout: &actors.TimeoutStrategy{Timeout: d.Snapshot.Milliseconds()}}}
		}
		if d.Deactivate > 0 {
			s.DeactivationStrategy = &actors.ActorDeactivationStrategy{Strategy: &actors.ActorDeactivationStrategy_Timeout{
				Timeout: &actors.TimeoutStrategy{Timeout: d.Deactivate.Milliseconds()}}}
		}
		a := &actors.Actor{Id: &actors.ActorId{Name: name, System: h.system}, Settings: s}
		for an := range d.Actions {
			a.Actions = append(a.Actions, &actors.Action{Name: an})
		}
		sortActions(a.Actions)
		for an, p := range d.Timers {
			a.TimerActions = append(a.TimerActions, &actors.FixedTimerAction{
				Seconds: int32(p.Milliseconds()), Action: &actors.Action{Name: an}})
		}
		if len(d.Channels) > 0 {
			a.Metadata = &actors.Metadata{}
			for _, c := range d.Channels {
				a.Metadata.ChannelGroup = append(a.Metadata.ChannelGroup, &actors.Channel{Topic: c.Topic, Action: c.Action})
			}
		}
		reg.Actors[name] = a
	}
	return &protocol.RegistrationRequest{
		ServiceInfo: &protocol.ServiceInfo{
			ServiceName: h.o.ServiceName, ServiceVersion: Version,
			ServiceRuntime: "go " + runtime.Version(), SupportLibraryName: LibraryName,
			SupportLibraryVersion: Version, ProtocolMajorVersion: 1,
		},
		ActorSystem: &actors.ActorSystem{Name: h.system, Registry: reg},
	}
}

func sortActions(v []*actors.Action) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j].Name < v[j-1].Name; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// Registered reports whether the host is registered now.
func (h *Host) Registered() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reg
}

// Registrations counts the successful registrations so far.
func (h *Host) Registrations() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.regs
}

// ProxyInfo is the gateway's answer to the last registration.
func (h *Host) ProxyInfo() *protocol.ProxyInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.info
}

// WaitRegistered waits until the host is registered, or ctx ends.
func (h *Host) WaitRegistered(ctx context.Context) error {
	h.mu.Lock()
	ch := h.regCh
	h.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("not registered with %s: %v", h.target, ctx.Err())
	}
}

func (h *Host) setRegistered(on bool, info *protocol.ProxyInfo) {
	h.mu.Lock()
	if on {
		h.reg = true
		h.regs++
		h.info = info
		close(h.regCh)
	} else if h.reg {
		h.reg = false
		h.regCh = make(chan struct{})
	}
	cb := h.o.OnRegistered
	h.mu.Unlock()
	if on && cb != nil {
		cb(h)
	}
}

// Start runs the host in the background (see Run).
func (h *Host) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.mu.Lock()
	h.cancel = cancel
	h.done = make(chan struct{})
	done := h.done
	h.mu.Unlock()
	go func() {
		defer close(done)
		h.Run(ctx)
	}()
}

// Stop ends what Start began: closes the stream and waits for the handlers
// still running (their results are dropped).
func (h *Host) Stop() {
	h.mu.Lock()
	cancel, done := h.cancel, h.done
	h.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	h.inflight.Wait()
}

// Run connects, registers and serves until ctx ends, reconnecting with
// exponential backoff (with +-20% jitter, MinBackoff..MaxBackoff) whenever
// the stream ends. Returns ctx's error.
func (h *Host) Run(ctx context.Context) error {
	delay := h.o.MinBackoff
	for ctx.Err() == nil {
		if h.session(ctx) {
			delay = h.o.MinBackoff
		}
		if ctx.Err() != nil {
			break
		}
		wait := time.Duration(float64(delay) * (0.8 + 0.4*rand.Float64()))
		h.o.Log("info", fmt.Sprintf("disconnected from %s; retrying in %v", h.target, wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		delay *= 2
		if delay > h.o.MaxBackoff {
			delay = h.o.MaxBackoff
		}
	}
	return ctx.Err()
}

// writeItem is one encoded HostMessage waiting for the stream.
type writeItem struct {
	b         []byte
	batchable bool // a single result: may join a ResultBatch
}

// writer: one message written at a time; when a write completes, what
// queued meanwhile leaves as one ResultBatch when the gateway granted
// batches (up to BatchMax results or the byte bound), else one by one. A
// result alone leaves as itself: nothing waits for a batch to fill. The
// queue is bounded by HostOptions.MaxInflight (one result per handler).
type writer struct {
	mu       sync.Mutex
	cond     *sync.Cond
	q        []writeItem
	closed   bool
	batch    bool
	maxBytes int
	stats    *counters
}

func (w *writer) push(it writeItem) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.q = append(w.q, it)
	w.cond.Signal()
	return true
}

func (w *writer) close() {
	w.mu.Lock()
	w.closed = true
	w.q = nil
	w.cond.Broadcast()
	w.mu.Unlock()
}

func (w *writer) setBatch(on bool) {
	w.mu.Lock()
	w.batch = on
	w.mu.Unlock()
}

// next waits for the next message to write; nil once closed.
func (w *writer) next() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.q) == 0 && !w.closed {
		w.cond.Wait()
	}
	if w.closed {
		return nil
	}
	k, bytes := 1, len(w.q[0].b)
	if w.batch && w.q[0].batchable {
		for k < len(w.q) && k < BatchMax && w.q[k].batchable && bytes+len(w.q[k].b) <= w.maxBytes {
			bytes += len(w.q[k].b)
			k++
		}
	}
	var out []byte
	n := uint64(0)
	for i := 0; i < k; i++ {
		if w.q[i].batchable {
			n++
		}
	}
	atomic.AddUint64(&w.stats.results, n)
	atomic.AddUint64(&w.stats.messages, 1)
	if k > 1 {
		atomic.AddUint64(&w.stats.batches, 1)
	}
	if k == 1 {
		out = w.q[0].b
	} else {
		items := make([][]byte, k)
		for i := range items {
			items[i] = w.q[i].b
		}
		out = JoinResults(items)
	}
	copy(w.q, w.q[k:])
	for i := len(w.q) - k; i < len(w.q); i++ {
		w.q[i] = writeItem{}
	}
	w.q = w.q[:len(w.q)-k]
	return out
}

// JoinResults joins encoded HostMessages that each hold one result into one
// HostMessage holding a ResultBatch, without encoding the results again
// (gateway.proto: `result` is field 2, `results` field 3, ResultBatch.results
// field 1, all length-delimited: each `0x12 len bytes` becomes `0x0a len
// bytes`).
func JoinResults(msgs [][]byte) []byte {
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	out := make([]byte, 0, total+11)
	out = append(out, 0x1a)
	for n := uint64(total); ; n >>= 7 {
		if n < 0x80 {
			out = append(out, byte(n))
			break
		}
		out = append(out, byte(n&0x7f|0x80))
	}
	for _, m := range msgs {
		off := len(out)
		out = append(out, m...)
		out[off] = 0x0a
	}
	return out
}

var connectDesc = &grpc.StreamDesc{StreamName: "Connect", ServerStreams: true, ClientStreams: true}

// session is one connection; it returns true when it got registered.
func (h *Host) session(parent context.Context) bool {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	conn, err := grpc.DialContext(ctx, h.d.target, append(append([]grpc.DialOption{}, h.d.opts...), h.o.DialOptions...)...)
	if err != nil {
		h.o.Log("error", fmt.Sprintf("cannot dial %s: %v", h.target, err))
		return false
	}
	defer conn.Close()
	sctx := h.d.withToken(ctx)
	if !h.o.NoBatch {
		sctx = metadata.AppendToOutgoingContext(sctx, LinkMDKey, LinkMDBatch)
	}
	stream, err := conn.NewStream(sctx, connectDesc, ConnectMethod,
		grpc.ForceCodec(Codec{}), grpc.MaxCallRecvMsgSize(h.o.MaxMessageBytes+(1<<16)))
	if err != nil {
		h.o.Log("info", fmt.Sprintf("cannot open the stream to %s: %v", h.target, err))
		return false
	}
	maxBytes := BatchBytes
	if m := h.o.MaxMessageBytes - 16; m < maxBytes {
		maxBytes = m
	}
	w := &writer{maxBytes: maxBytes, stats: &h.stats}
	atomic.StoreInt32(&h.stats.batched, 0)
	w.cond = sync.NewCond(&w.mu)
	defer w.close()
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		for b := w.next(); b != nil; b = w.next() {
			if err := stream.SendMsg(RawFrame(b)); err != nil {
				w.close()
				cancel()
				return
			}
		}
	}()
	defer func() {
		cancel()
		w.close()
		<-wdone
	}()

	reg, err := proto.Marshal(&gatewayv1.HostMessage{Msg: &gatewayv1.HostMessage_Registration{Registration: h.RegistrationRequest()}})
	if err != nil {
		h.o.Log("error", fmt.Sprintf("cannot encode the registration: %v", err))
		return false
	}
	w.push(writeItem{b: reg})
	h.mu.Lock()
	var files []byte
	for _, c := range h.contracts {
		files = append(files, c...)
	}
	h.mu.Unlock()
	if len(files) > 0 {
		b, err := proto.Marshal(&gatewayv1.HostMessage{Msg: &gatewayv1.HostMessage_Contracts{Contracts: &gatewayv1.Contracts{Files: files}}})
		if err == nil {
			w.push(writeItem{b: b})
		}
	}

	timer := time.AfterFunc(h.o.RegistrationTimeout, func() {
		h.o.Log("warn", fmt.Sprintf("no registration answer from %s within %v", h.target, h.o.RegistrationTimeout))
		cancel()
	})
	first := new(gatewayv1.GatewayMessage)
	err = stream.RecvMsg(first)
	timer.Stop()
	if err != nil {
		if parent.Err() == nil {
			h.o.Log("warn", fmt.Sprintf("stream to %s failed: %v", h.target, err))
		}
		return false
	}
	r := first.GetRegistration()
	if r == nil {
		h.o.Log("error", "the gateway sent a message before the registration answer")
		return false
	}
	if st := r.GetStatus(); st.GetStatus() != protocol.Status_OK {
		h.o.Log("error", fmt.Sprintf("registration refused: %v %s", st.GetStatus(), st.GetMessage()))
		return false
	}
	if md, err := stream.Header(); err == nil {
		for _, v := range md.Get(LinkMDKey) {
			if v == LinkMDBatch && !h.o.NoBatch {
				w.setBatch(true)
				atomic.StoreInt32(&h.stats.batched, 1)
			}
		}
	}
	h.o.Log("info", fmt.Sprintf("registered with %s", h.target))
	h.setRegistered(true, r.GetProxyInfo())
	defer h.setRegistered(false, nil)

	sem := make(chan struct{}, h.o.MaxInflight)
	for {
		m := new(gatewayv1.GatewayMessage)
		if err := stream.RecvMsg(m); err != nil {
			if parent.Err() == nil {
				h.o.Log("warn", fmt.Sprintf("stream to %s ended: %v", h.target, err))
			}
			return true
		}
		var tasks []*gatewayv1.InvocationTask
		switch x := m.Msg.(type) {
		case *gatewayv1.GatewayMessage_Invocation:
			tasks = []*gatewayv1.InvocationTask{x.Invocation}
		case *gatewayv1.GatewayMessage_Tasks:
			tasks = x.Tasks.GetTasks()
		default:
			h.o.Log("warn", "ignoring an unexpected gateway message")
		}
		for _, t := range tasks {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return true
			}
			h.inflight.Add(1)
			go func(t *gatewayv1.InvocationTask) {
				defer h.inflight.Done()
				defer func() { <-sem }()
				b := h.runTask(ctx, t)
				if !w.push(writeItem{b: b, batchable: true}) {
					h.o.Log("debug", fmt.Sprintf("stream gone; result of request %d dropped", t.GetRequestId()))
				}
			}(t)
		}
	}
}

// runTask runs one task and returns its encoded HostMessage{result}.
func (h *Host) runTask(ctx context.Context, t *gatewayv1.InvocationTask) []byte {
	res := &gatewayv1.InvocationResult{RequestId: t.GetRequestId()}
	resp, err := h.invoke(ctx, t)
	if err != nil {
		e := asError(err)
		if e.Code <= 0 || e.Code > 16 {
			e.Code = codes.Unknown
		}
		res.Outcome = &gatewayv1.InvocationResult_Error{Error: &gatewayv1.HostError{Code: int32(e.Code), Message: e.Message}}
	} else {
		res.Outcome = &gatewayv1.InvocationResult_Response{Response: resp}
	}
	msg := &gatewayv1.HostMessage{Msg: &gatewayv1.HostMessage_Result{Result: res}}
	b, err := proto.Marshal(msg)
	if err != nil {
		h.o.Log("error", fmt.Sprintf("cannot encode the result of request %d: %v", t.GetRequestId(), err))
		res.Outcome = &gatewayv1.InvocationResult_Error{Error: &gatewayv1.HostError{
			Code: int32(codes.Internal), Message: fmt.Sprintf("cannot encode the result: %v", err)}}
		b, _ = proto.Marshal(msg)
	}
	if len(b) > h.o.MaxMessageBytes {
		// Sent, it would fail the whole stream and every call on it: this one call fails instead.
		h.o.Log("warn", fmt.Sprintf("result of request %d is %d bytes, over the limit of %d", t.GetRequestId(), len(b), h.o.MaxMessageBytes))
		res.Outcome = &gatewayv1.InvocationResult_Error{Error: &gatewayv1.HostError{
			Code: int32(codes.ResourceExhausted), Message: "the action's result exceeds the message size limit"}}
		b, _ = proto.Marshal(msg)
	}
	return b
}

func (h *Host) invoke(parent context.Context, t *gatewayv1.InvocationTask) (resp *protocol.ActorInvocationResponse, err error) {
	inv := t.GetInvocation()
	if inv == nil {
		return nil, Errorf(codes.InvalidArgument, "the task carries no invocation")
	}
	id := inv.GetActor()
	name := id.GetName()
	h.mu.Lock()
	e := h.actors[name]
	if e == nil && id.GetParent() != "" {
		e = h.actors[id.GetParent()]
	}
	h.mu.Unlock()
	if e == nil {
		return nil, Errorf(codes.NotFound, "no actor '%s' in this host", name)
	}
	handler := e.def.Actions[inv.GetActionName()]
	if handler == nil {
		return nil, Errorf(codes.NotFound, "actor '%s' has no action '%s'", e.def.Name, inv.GetActionName())
	}
	// The gateway always sends the effective deadline: past it the caller is
	// gone, and running the action would change state nobody asked for.
	ctx, cancel := parent, context.CancelFunc(func() {})
	var deadline time.Time
	if ms := t.GetDeadlineUnixMs(); ms > 0 {
		deadline = time.UnixMilli(ms)
		if !time.Now().Before(deadline) {
			return nil, Errorf(codes.DeadlineExceeded, "deadline passed before the action ran")
		}
		ctx, cancel = context.WithDeadline(parent, deadline)
	}
	defer cancel()
	sys := id.GetSystem()
	if sys == "" {
		sys = h.system
	}
	cur := inv.GetCurrentContext()
	c := &Context{Context: ctx, RequestID: t.GetRequestId(), DeadlineAt: deadline, ActorID: id,
		Actor: name, System: sys, Action: inv.GetActionName(), State: cur.GetState(),
		Payload: inv.GetValue(), Caller: inv.GetCaller(), Metadata: copyMap(cur.GetMetadata()),
		Tags: copyMap(cur.GetTags()), Invocation: inv, Host: h}
	reply, err := callHandler(handler, c, h.o.Log)
	if err != nil {
		return nil, err
	}
	upd := &protocol.Context{Tags: c.Tags, Self: id}
	// No state: unchanged (the gateway keeps the one it has).
	if !e.def.Stateless && e.def.Kind != Pooled && c.newState != nil {
		upd.State = c.newState
	}
	resp = &protocol.ActorInvocationResponse{ActorName: name, ActorSystem: sys, UpdatedContext: upd,
		Checkpoint: c.checkpoint, Workflow: c.workflow()}
	if reply != nil && reply.ProtoReflect().IsValid() {
		a, err := toAny(reply)
		if err != nil {
			return nil, Errorf(codes.Internal, "%s.%s: reply: %v", e.def.Name, inv.GetActionName(), err)
		}
		resp.Payload = &protocol.ActorInvocationResponse_Value{Value: a}
	} else {
		resp.Payload = &protocol.ActorInvocationResponse_Noop{Noop: &protocol.Noop{}}
	}
	return resp, nil
}

// callHandler runs f, turning a panic into UNKNOWN.
func callHandler(f Handler, c *Context, log func(level, msg string)) (reply proto.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			log("error", fmt.Sprintf("handler %s.%s panicked: %v\n%s", c.Actor, c.Action, p, debug.Stack()))
			reply, err = nil, Errorf(codes.Unknown, "the handler panicked: %v", p)
		}
	}()
	return f(c)
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
