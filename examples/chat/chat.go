package main

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/browser"
	"github.com/herald-go/herald/fallback"
	"github.com/herald-go/herald/metrics"
	"github.com/herald-go/herald/metrics/prometheus"
)

// Limits on what people type.
const (
	maxNameChars = 24      // a user's name, in characters
	maxTextChars = 1000    // one message's text, in characters
	maxBodyBytes = 8 << 10 // one POST /rooms/{room}/messages body
)

// password seals the "nes" cookie. It is fixed so that a signed-in page stays signed in across
// a restart of the demo; as a name is all it takes to sign in, the seal guards nothing that
// signing in would not give. A real application keeps its password secret, out of its source.
const password = "herald chat demo: the nes cookie is sealed with this"

// roomNameRE is what room names look like.
var roomNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

//go:embed page
var pageFiles embed.FS

// config is what the flags set.
type config struct {
	rooms    []string // the rooms that always exist; newcomers start in the first
	history  int      // messages kept per room
	maxRooms int      // rooms that may exist at once

	broker      broker.Broker // nil: one node
	chatBroker  broker.Broker // with broker: the chat's own link, for its node (cluster.go)
	brokerName  string        // with broker: what -redis or -nats named, for messages
	brokerStart string        // with broker: the command that starts one here
	fallbackKey []byte        // with broker: the key every node signs fallback tickets with
	metrics     metrics.Recorder
	gatherer    promGatherer // serves /metrics and /stats; nil: none
}

// check says what is wrong with the configuration, in the flags' terms.
func (c config) check() error {
	if len(c.rooms) == 0 {
		return errors.New("-rooms names no room; it needs at least one")
	}
	for i, name := range c.rooms {
		if !roomNameRE.MatchString(name) {
			return fmt.Errorf("-rooms: %q is no room name: 1 to 32 of a-z, 0-9, - and _, starting with a letter or digit", name)
		}
		if slices.Contains(c.rooms[:i], name) {
			return fmt.Errorf("-rooms names %q twice", name)
		}
	}
	if c.history < 0 {
		return fmt.Errorf("-history is %d; it must be 0 or more", c.history)
	}
	if c.maxRooms < len(c.rooms) {
		return fmt.Errorf("-max-rooms is %d, below the %d rooms of -rooms", c.maxRooms, len(c.rooms))
	}
	return nil
}

// message is one message in a room, as it is published and kept.
type message struct {
	Type string    `json:"type"` // "message"
	ID   int64     `json:"id"`
	Room string    `json:"room"`
	User string    `json:"user"`
	Text string    `json:"text"`
	Time time.Time `json:"time"`
}

// presence is published to a room when someone joins or leaves it.
type presence struct {
	Type    string   `json:"type"` // "presence"
	Room    string   `json:"room"`
	Seq     int64    `json:"seq"`
	Event   string   `json:"event"` // "join" or "leave"
	User    string   `json:"user"`
	Members []string `json:"members"`
}

// lobby is published to /rooms when the list of rooms or a head count changes.
type lobby struct {
	Type  string      `json:"type"` // "rooms"
	Seq   int64       `json:"seq"`
	Rooms []roomEntry `json:"rooms"`
}

type roomEntry struct {
	Name    string `json:"name"`
	Members int    `json:"members"`
}

// room is one room's state. The chat's mutex guards it.
type room struct {
	name    string
	fixed   bool                      // one of -rooms: never goes away
	history []message                 // oldest first, at most config.history
	sockets map[*herald.Socket]string // the connections subscribed, and their users
	users   map[string]int            // the users present, and how many connections each has here
	seq     int64                     // the seq of the room's last presence change
	// remote holds, with a broker, the users present through the other nodes, by node.
	remote map[string]map[string]bool
}

// members returns the room's users, through this node or any other, sorted.
func (r *room) members() []string {
	users := make([]string, 0, len(r.users))
	for u := range r.users {
		users = append(users, u)
	}
	for _, set := range r.remote {
		for u := range set {
			if r.users[u] == 0 && !slices.Contains(users, u) {
				users = append(users, u)
			}
		}
	}
	slices.SortFunc(users, func(a, b string) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a), strings.ToLower(b)), cmp.Compare(a, b))
	})
	return users
}

// present reports whether user is in the room, through this node or another.
func (r *room) present(user string) bool {
	if r.users[user] > 0 {
		return true
	}
	for _, set := range r.remote {
		if set[user] {
			return true
		}
	}
	return false
}

// remoteSet returns the set of users present through node, creating it.
func (r *room) remoteSet(node string) map[string]bool {
	if r.remote == nil {
		r.remote = map[string]map[string]bool{}
	}
	set := r.remote[node]
	if set == nil {
		set = map[string]bool{}
		r.remote[node] = set
	}
	return set
}

// record keeps m in the room's history, in the order of ids (messages posted on other nodes
// may come in a little out of order), at most keep of them, each once.
func (r *room) record(m message, keep int) {
	if keep <= 0 {
		return
	}
	i, found := slices.BinarySearchFunc(r.history, m.ID, func(h message, id int64) int { return cmp.Compare(h.ID, id) })
	if found {
		return
	}
	r.history = slices.Insert(r.history, i, m)
	if len(r.history) > keep {
		r.history = append(r.history[:0], r.history[len(r.history)-keep:]...)
	}
}

// chat is the demo's state: its rooms, with their history and the people present. Presence
// is kept here, from OnSubscribe, OnUnsubscribe and OnDisconnection, rather than read back
// with Server.EachSubscriber: OnSubscribe runs before the socket joins the subscription, so
// what EachSubscriber sees lags what has been published, and every change needs a seq that a
// snapshot can be ordered against.
type chat struct {
	cfg config
	nes *herald.Server

	// mu guards what follows and orders publications: every Publish happens under it, so the
	// seqs and ids reach each connection in increasing order.
	mu       sync.Mutex
	rooms    map[string]*room
	last     int64 // the last id or seq handed out (or heard of from another node)
	lobbySeq int64

	// With a broker: the link to the other nodes (cluster.go), and when each was last heard.
	peers *peers
	heard map[string]time.Time
}

// newChat builds the chat server: its nes server, routes and page.
func newChat(cfg config, logger *slog.Logger) *chat {
	c := &chat{cfg: cfg, rooms: map[string]*room{}, heard: map[string]time.Time{}}
	for _, name := range cfg.rooms {
		c.rooms[name] = c.newRoom(name, true)
	}
	c.lobbySeq = c.next()

	mux := http.NewServeMux()
	var fb *fallback.Options
	if cfg.broker != nil {
		fb = &fallback.Options{Key: cfg.fallbackKey}
	}
	c.nes = herald.NewServer(http.NewCrossOriginProtection().Handler(mux), &herald.Options{
		Broker:   cfg.broker,
		Fallback: fb,
		Metrics:  cfg.metrics,
		Auth: &herald.AuthOptions{
			Type:           "cookie",
			Authenticate:   authenticate,
			Password:       password,
			CookieInsecure: true, // the demo serves plain HTTP
		},
		OnDisconnection: c.disconnected,
		Logger:          logger,
	})
	c.nes.Subscription("/rooms", &herald.SubscriptionOptions{Auth: &herald.SubscriptionAuth{}})
	c.nes.Subscription("/rooms/{room}", &herald.SubscriptionOptions{
		Auth:          &herald.SubscriptionAuth{},
		OnSubscribe:   c.join,
		OnUnsubscribe: c.leave,
	})

	authed := func(h http.HandlerFunc) http.Handler { return c.nes.Authenticated(h) }
	mux.Handle("GET /me", authed(func(w http.ResponseWriter, r *http.Request) {
		replyJSON(w, http.StatusOK, map[string]string{"user": herald.CredentialsFrom(r.Context()).User})
	}))
	mux.Handle("GET /rooms", authed(c.getRooms))
	mux.Handle("GET /rooms/{room}/messages", authed(c.getMessages))
	mux.Handle("GET /rooms/{room}/members", authed(c.getMembers))
	mux.Handle("POST /rooms/{room}/messages", authed(c.post))
	mux.HandleFunc("POST /signout", signOut)
	if cfg.gatherer != nil {
		mux.Handle("GET /metrics", prometheus.Handler(cfg.gatherer))
		mux.Handle("GET /stats", statsHandler(cfg.gatherer))
	}
	mux.Handle("GET /readyz", c.nes.ReadyHandler())
	mux.Handle("GET /livez", c.nes.LiveHandler())

	page, _ := fs.Sub(pageFiles, "page")
	mux.Handle("GET /", pageHeaders(http.FileServerFS(page)))
	mux.Handle("GET /herald/", http.StripPrefix("/herald", browser.Handler()))
	return c
}

// next hands out the next id or seq: one more than the last, and never behind the clock in
// microseconds, so that those of a restarted server are still larger than before.
func (c *chat) next() int64 {
	c.last = max(c.last+1, time.Now().UnixMicro())
	return c.last
}

func (c *chat) newRoom(name string, fixed bool) *room {
	return &room{name: name, fixed: fixed, history: []message{}, sockets: map[*herald.Socket]string{}, users: map[string]int{}, seq: c.next()}
}

// authenticate signs people in: the name in the query is all it takes. The auth endpoint
// (GET /nes/auth?name=NAME) seals it into the cookie; Server.Authenticated asks it for plain
// HTTP requests to the routes that need a user.
func authenticate(r *http.Request) (*herald.Credentials, error) {
	q := r.URL.Query()
	if !q.Has("name") {
		return nil, nil
	}
	// Another site may not sign its visitors in under a name of its choosing.
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return nil, herald.NewError(http.StatusForbidden, "Sign in from this site's own page")
	}
	name, err := checkName(q.Get("name"))
	if err != nil {
		return nil, err
	}
	return &herald.Credentials{User: name}, nil
}

// checkName returns the name trimmed, with every run of spaces made one, or says what is wrong
// with it.
func checkName(name string) (string, error) {
	name = strings.Join(strings.Fields(name), " ")
	if n := utf8.RuneCountInString(name); n == 0 || n > maxNameChars {
		return "", herald.NewError(http.StatusBadRequest, fmt.Sprintf("A name has 1 to %d characters", maxNameChars))
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) && !strings.ContainsRune(" -_.'", r) {
			return "", herald.NewError(http.StatusBadRequest, "A name holds letters, digits, spaces and - _ . ' only")
		}
	}
	return name, nil
}

// checkText returns a message's text without the white space around it and with CRLF made
// LF, or says what is wrong with it.
func checkText(text string) (string, error) {
	text = strings.TrimSpace(strings.ReplaceAll(text, "\r\n", "\n"))
	if text == "" {
		return "", herald.NewError(http.StatusBadRequest, "A message needs some text")
	}
	if n := utf8.RuneCountInString(text); n > maxTextChars {
		return "", herald.NewError(http.StatusBadRequest, fmt.Sprintf("A message holds at most %d characters; this one has %d", maxTextChars, n))
	}
	for _, r := range text {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return "", herald.NewError(http.StatusBadRequest, fmt.Sprintf("A message may not hold control characters (%U)", r))
		}
	}
	return text, nil
}

// signOut clears the cookie. The page then reconnects without it.
func signOut(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: "nes", Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// join runs when a connection subscribes to /rooms/{room}: it creates the room if need be,
// and announces the user unless they were there already.
func (c *chat) join(ctx context.Context, s *herald.Socket, path string, params map[string]string) error {
	name := params["room"]
	if !roomNameRE.MatchString(name) {
		return herald.NewError(http.StatusNotFound, "No room "+name+": room names are 1 to 32 of a-z, 0-9, - and _, starting with a letter or digit")
	}
	user := s.Credentials().User // the subscription requires credentials
	c.mu.Lock()
	defer c.mu.Unlock()
	// A socket that closes from here on is swept by disconnected, which runs after it has
	// closed; one already closed would never be.
	if !s.IsOpen() {
		return herald.ErrSocketClosed
	}
	r, changed := c.rooms[name], false // whether the lobby changes
	if r == nil {
		if len(c.rooms) >= c.cfg.maxRooms {
			return herald.NewError(http.StatusForbidden, fmt.Sprintf("No room for #%s: this server keeps at most %d rooms (its -max-rooms)", name, c.cfg.maxRooms))
		}
		r, changed = c.newRoom(name, false), true
		c.rooms[name] = r
	}
	if _, ok := r.sockets[s]; ok {
		return nil
	}
	r.sockets[s] = user
	was := r.present(user) // through another node, maybe
	if r.users[user]++; r.users[user] == 1 {
		c.share(event{Kind: "join", Room: name, User: user})
		if !was {
			_ = c.publishPresence(r, "join", user)
			changed = true
		}
	}
	if changed {
		c.publishLobby()
	}
	return nil
}

// leave runs when a connection leaves /rooms/{room}.
func (c *chat) leave(ctx context.Context, s *herald.Socket, path string, params map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.rooms[params["room"]]; r != nil && c.remove(r, s) {
		c.publishLobby()
	}
}

// disconnected runs once a connection has closed and left its subscriptions (through leave).
// It sweeps the rooms for the connection all the same: one that closed while join ran was
// added there but never joined the subscription, so leave does not run for it.
func (c *chat) disconnected(s *herald.Socket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	for _, r := range c.rooms {
		changed = c.remove(r, s) || changed
	}
	if changed {
		c.publishLobby()
	}
}

// remove takes a connection out of a room, announces its user's leaving when it was their last
// there, and drops a room that is left empty and silent. It reports whether the lobby changed:
// a head count, or a room gone.
func (c *chat) remove(r *room, s *herald.Socket) bool {
	user, ok := r.sockets[s]
	if !ok {
		return false
	}
	delete(r.sockets, s)
	if r.users[user]--; r.users[user] > 0 {
		return false
	}
	delete(r.users, user)
	c.share(event{Kind: "leave", Room: r.name, User: user})
	if r.present(user) { // through another node
		return false
	}
	_ = c.publishPresence(r, "leave", user)
	c.dropIfIdle(r)
	return true
}

// dropIfIdle drops a room that nobody is in, on any node, and nobody wrote in, unless it is
// one of -rooms. c.mu is held.
func (c *chat) dropIfIdle(r *room) {
	if r.fixed || len(r.users) > 0 || len(r.history) > 0 {
		return
	}
	for _, set := range r.remote {
		if len(set) > 0 {
			return
		}
	}
	delete(c.rooms, r.name)
}

// publishPresence publishes a join or leave to the room, with who is there now. c.mu is held.
func (c *chat) publishPresence(r *room, event, user string) error {
	r.seq = c.next()
	return c.nes.Publish("/rooms/"+r.name, presence{Type: "presence", Room: r.name, Seq: r.seq, Event: event, User: user, Members: r.members()}, nil)
}

// publishLobby publishes the list of rooms to /rooms. c.mu is held.
func (c *chat) publishLobby() {
	c.lobbySeq = c.next()
	_ = c.nes.Publish("/rooms", c.lobbyLocked(), nil)
}

// lobbyLocked lists the rooms: those of -rooms in their order, then the others by name.
func (c *chat) lobbyLocked() lobby {
	l := lobby{Type: "rooms", Seq: c.lobbySeq, Rooms: make([]roomEntry, 0, len(c.rooms))}
	for _, name := range c.cfg.rooms {
		l.Rooms = append(l.Rooms, roomEntry{Name: name, Members: len(c.rooms[name].members())})
	}
	var others []roomEntry
	for _, r := range c.rooms {
		if !r.fixed {
			others = append(others, roomEntry{Name: r.name, Members: len(r.members())})
		}
	}
	slices.SortFunc(others, func(a, b roomEntry) int { return cmp.Compare(a.Name, b.Name) })
	l.Rooms = append(l.Rooms, others...)
	return l
}

func (c *chat) getRooms(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	l := c.lobbyLocked()
	c.mu.Unlock()
	replyJSON(w, http.StatusOK, l)
}

// roomOr404 returns the request's room, or answers 404 and returns nil. c.mu is held.
func (c *chat) roomOr404(w http.ResponseWriter, r *http.Request) *room {
	name := r.PathValue("room")
	if rm := c.rooms[name]; rm != nil {
		return rm
	}
	replyError(w, http.StatusNotFound, "No room "+name+": subscribe to /rooms/"+name+" to create it")
	return nil
}

func (c *chat) getMessages(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rm := c.roomOr404(w, r); rm != nil {
		replyJSON(w, http.StatusOK, map[string]any{"room": rm.name, "messages": rm.history})
	}
}

func (c *chat) getMembers(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rm := c.roomOr404(w, r); rm != nil {
		replyJSON(w, http.StatusOK, map[string]any{"room": rm.name, "seq": rm.seq, "members": rm.members()})
	}
}

// post checks a message, stamps it with its user and the time, keeps it in the room's history
// and publishes it to the room.
func (c *chat) post(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		replyError(w, http.StatusUnsupportedMediaType, `Send {"text": "..."} as application/json`)
		return
	}
	var in struct {
		Text *string `json:"text"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&in); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			replyError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("A message's body holds at most %d bytes", maxBodyBytes))
			return
		}
		replyError(w, http.StatusBadRequest, `Expected {"text": "..."}`)
		return
	}
	if in.Text == nil {
		replyError(w, http.StatusBadRequest, `Expected {"text": "..."}`)
		return
	}
	text, err := checkText(*in.Text)
	if err != nil {
		replyError(w, http.StatusBadRequest, err.(*herald.Error).Message)
		return
	}
	user := herald.CredentialsFrom(r.Context()).User
	c.mu.Lock()
	defer c.mu.Unlock()
	rm := c.roomOr404(w, r)
	if rm == nil {
		return
	}
	m := message{Type: "message", ID: c.next(), Room: rm.name, User: user, Text: text, Time: time.Now().UTC().Truncate(time.Millisecond)}
	rm.record(m, c.cfg.history)
	c.share(event{Kind: "message", Room: rm.name, Message: &m})
	_ = c.nes.Publish("/rooms/"+rm.name, m, nil)
	replyJSON(w, http.StatusCreated, m)
}

// pageHeaders adds the page's security headers: no script, style or connection but its own
// (and its WebSocket), not framed, not sniffed.
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

func replyJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// replyError answers an error in the shape nes clients read: {statusCode, error, message}.
func replyError(w http.ResponseWriter, status int, msg string) {
	replyJSON(w, status, map[string]any{"statusCode": status, "error": http.StatusText(status), "message": msg})
}
