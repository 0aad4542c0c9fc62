/*! holysse.js: follow an LLM answer relayed by holysse.relay, in the browser.
 * No dependency, no build step. Served by the relay at {base}/holysse.js.
 *
 *   var stream = HolySSE.start({
 *     base: "/holysse",                      // where the relay is mounted
 *     body: {messages: [{role: "user", content: "Hi"}]},
 *     target: document.getElementById("answer"),   // gets the text (textContent)
 *     onStatus: function (status) {},        // connecting, streaming, reconnecting, done, error
 *     onError: function (error) {},          // {error, message, status, retryAfter}
 *   });
 *   stream.stop();
 *   HolySSE.resume({base: "/holysse", target: ...});  // after a reload: follow the unfinished stream
 *   HolySSE.follow(id, {base: "/holysse", token: token, target: ...});  // another tab, or a signed read link
 *
 * Text is rebuilt from the stream's events: a reconnect continues after the
 * last event received (Last-Event-ID), a "reset" event clears the text (the
 * model's answer changed), "finish" and "failed" end the stream.
 *
 * A refused start keeps the relay's answer: error.status is the HTTP status
 * (429 when too many answers are being generated for this session or server,
 * with error.retryAfter in seconds from Retry-After), error.error its name
 * ("TooManyStreams"), error.message the reason, shown by onStatus("error").
 */
(function (global) {
  "use strict";

  var STORAGE_KEY = "holysse:stream";
  var MAX_REOPENS = 6;

  function call(fn) {
    if (typeof fn === "function") {
      try {
        fn.apply(null, Array.prototype.slice.call(arguments, 1));
      } catch (err) {
        if (global.console) global.console.error("holysse.js callback failed", err);
      }
    }
  }

  function storage() {
    try {
      return global.sessionStorage || null;
    } catch (err) {
      return null; // storage disabled: no resume after a reload, the rest works
    }
  }

  function RelayStream(options) {
    this.options = options || {};
    this.base = (this.options.base || "/holysse").replace(/\/+$/, "");
    this.id = null;
    this.text = "";
    this.status = "idle";
    this.lastEventId = "";
    this.finishReason = null;
    this.usage = null;
    this.error = null;
    this.stopped = false;
    this._source = null;
    this._timer = null;
    this._reopens = 0;
    this.ended = false;
  }

  RelayStream.prototype._setStatus = function (status, detail) {
    this.status = status;
    if (this.options.statusTarget) this.options.statusTarget.textContent = status;
    call(this.options.onStatus, status, detail || null, this);
  };

  RelayStream.prototype._render = function (piece) {
    if (this.options.target) this.options.target.textContent = this.text;
    call(this.options.onText, this.text, piece, this);
  };

  RelayStream.prototype._headers = function (extra) {
    var headers = {}, name, given = this.options.headers || {};
    for (name in extra) headers[name] = extra[name];
    for (name in given) headers[name] = given[name];
    return headers;
  };

  RelayStream.prototype._start = function (body) {
    var self = this;
    this._setStatus("connecting");
    fetch(this.base + "/streams", {
      method: "POST",
      credentials: "same-origin",
      headers: this._headers({"Content-Type": "application/json", "Accept": "application/json"}),
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok || !json.id) {
          var err = new Error(json.message || "the relay answered HTTP " + response.status);
          err.code = json.error || "http_" + response.status;
          err.status = response.status;
          var wait = parseInt(response.headers.get("Retry-After") || "", 10);
          err.retryAfter = isNaN(wait) ? null : wait;
          throw err;
        }
        return json.id;
      });
    }).then(function (id) {
      self.id = id;
      if (self.ended) { // stop() was called while starting: stop the new stream too
        self._sendStop();
        return;
      }
      self._remember();
      self._open();
    }).catch(function (err) {
      self._fail(err && err.code ? err.code : "start_failed", err && err.message ? err.message : String(err),
                 err && err.status ? {status: err.status, retryAfter: err.retryAfter} : null);
    });
  };

  RelayStream.prototype._url = function () {
    var url = this.base + "/streams/" + encodeURIComponent(this.id), query = [];
    // A new EventSource cannot send Last-Event-ID: the relay also reads it from the query.
    if (this.lastEventId) query.push("last_event_id=" + encodeURIComponent(this.lastEventId));
    if (this.options.token) query.push("token=" + encodeURIComponent(this.options.token));
    return query.length ? url + "?" + query.join("&") : url;
  };

  RelayStream.prototype._open = function () {
    var self = this;
    var source = new EventSource(this._url());
    this._source = source;
    if (this.status !== "reconnecting") this._setStatus("connecting");
    source.onopen = function () {
      self._reopens = 0;
      self._setStatus("streaming");
    };
    source.onerror = function () {
      if (self.ended || source !== self._source) return;
      if (source.readyState === EventSource.CONNECTING) {
        self._setStatus("reconnecting"); // the browser reconnects by itself, with Last-Event-ID
        return;
      }
      // CLOSED: the browser gave up (an HTTP error): ask why, then give up too or open a new one.
      source.close();
      self._probe();
    };
    this._listen(source, "text", function (data) {
      self.text += data.text;
      self._render(data.text);
    });
    this._listen(source, "reset", function (data) {
      self.text = "";
      self._render("");
      call(self.options.onReset, data.reason, self);
    });
    this._listen(source, "thinking", function (data) { call(self.options.onThinking, data.text, self); });
    this._listen(source, "tool", function (data) { call(self.options.onTool, data, self); });
    this._listen(source, "usage", function (data) { self.usage = data; });
    this._listen(source, "upstream", function (data) { call(self.options.onUpstream, data, self); });
    this._listen(source, "finish", function (data) {
      self.finishReason = data.reason;
      self.usage = data.usage || self.usage;
      self._end("done", data);
      call(self.options.onDone, self.text, data, self);
    });
    this._listen(source, "failed", function (data) {
      self._fail(data.error, data.message);
    });
  };

  RelayStream.prototype._probe = function () {
    var self = this;
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    this._setStatus("reconnecting");
    fetch(this._url(), {
      credentials: "same-origin", headers: {"Accept": "text/event-stream"}, signal: controller && controller.signal
    }).then(function (response) {
      if (response.status >= 400 && response.status < 500) { // refused for good: say why
        return response.json().catch(function () { return {}; }).then(function (json) {
          self._fail(json.error || "http_" + response.status, json.message || "the relay answered HTTP " + response.status,
                     {status: response.status, retryAfter: null});
        });
      }
      if (controller) controller.abort();
      self._retry();
    }, function () {
      self._retry();
    });
  };

  RelayStream.prototype._retry = function () {
    var self = this;
    if (this.ended) return;
    this._reopens += 1;
    if (this._reopens > MAX_REOPENS) {
      this._fail("unreachable", "the stream could not be reached");
      return;
    }
    this._timer = setTimeout(function () { self._open(); }, Math.min(8000, 500 * Math.pow(2, this._reopens - 1)));
  };

  RelayStream.prototype._listen = function (source, name, handle) {
    var self = this;
    source.addEventListener(name, function (event) {
      if (source !== self._source || self.ended) return;
      if (event.lastEventId) self.lastEventId = event.lastEventId;
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (err) {
        return; // not ours
      }
      handle(data);
    });
  };

  RelayStream.prototype._end = function (status, detail) {
    this.ended = true;
    if (this._timer) clearTimeout(this._timer);
    if (this._source) this._source.close();
    this._source = null;
    this._forget();
    this._setStatus(status, detail);
  };

  RelayStream.prototype._fail = function (code, message, http) {
    if (this.ended) return;
    this.error = {error: code, message: message, status: http ? http.status : null,
                  retryAfter: http ? http.retryAfter : null};
    this._end("error", this.error);
    call(this.options.onError, this.error, this);
  };

  /** Stop following and cancel the answer on the server (the part already
   * written stays readable). A viewer holding a read link only stops following. */
  RelayStream.prototype.stop = function () {
    if (this.ended) return;
    this.stopped = true;
    if (this.id && !this.options.token) this._sendStop();
    this._end("done", {stopped: true});
  };

  /** Stop following, leaving the answer running on the server (another tab,
   * a reload or HolySSE.resume can follow it again). */
  RelayStream.prototype.leave = function () {
    if (this.ended) return;
    this.ended = true;
    if (this._timer) clearTimeout(this._timer);
    if (this._source) this._source.close();
    this._source = null;
    this._setStatus("left");
  };

  RelayStream.prototype._sendStop = function () {
    fetch(this.base + "/streams/" + encodeURIComponent(this.id), {
      method: "DELETE", credentials: "same-origin", keepalive: true, headers: this._headers({})
    }).catch(function () {});
  };

  RelayStream.prototype._remember = function () {
    var store = storage();
    if (store && this.options.remember !== false) {
      store.setItem(STORAGE_KEY, JSON.stringify({base: this.base, id: this.id, token: this.options.token || null}));
    }
  };

  RelayStream.prototype._forget = function () {
    var store = storage();
    if (store && this.options.remember !== false) {
      var saved = store.getItem(STORAGE_KEY);
      if (saved && saved.indexOf(JSON.stringify(this.id)) >= 0) store.removeItem(STORAGE_KEY);
    }
  };

  global.HolySSE = {
    version: "1",
    /** POST options.body to {base}/streams and follow the new stream. */
    start: function (options) {
      var stream = new RelayStream(options);
      stream._start(options.body || {});
      return stream;
    },
    /** Follow an existing stream by id, from its first event. */
    follow: function (id, options) {
      var stream = new RelayStream(options);
      stream.id = id;
      stream._remember();
      stream._open();
      return stream;
    },
    /** After a page reload: follow the stream this tab left unfinished, or return null. */
    resume: function (options) {
      var store = storage(), saved = null;
      options = options || {};
      try {
        saved = store && JSON.parse(store.getItem(STORAGE_KEY) || "null");
      } catch (err) {
        saved = null;
      }
      var base = (options.base || "/holysse").replace(/\/+$/, "");
      if (!saved || !saved.id || saved.base !== base) return null;
      if (saved.token && !options.token) options.token = saved.token;
      return global.HolySSE.follow(saved.id, options);
    }
  };
})(typeof window !== "undefined" ? window : this);
