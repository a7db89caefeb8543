"""Hearth's offline speech-to-text engine: PocketSphinx 5 (its PyPI wheel carries the en-us
model), driven by hearth-media over standard input and output, one JSON object per line.

In:  {"open": ID, "vad_silence_ms": N, "vad_level": 0-3, "phrases": [..]}
                                                          a speaker's stream starts
     {"pcm": ID, "b64": "..."}                            16 kHz mono s16le audio of it
     {"close": ID}                                        it ends (a sentence in progress ends)
Out: {"ready": true}                                     first, once the engine is loaded
     {"id": ID, "speech": s}                              every 0.1 s of a sentence: its length so far
     {"id": ID, "text": "...", "final": false}            a growing hypothesis of the sentence
     {"id": ID, "text": "...", "final": true, "start": s, "end": s}
                                                          a sentence, seconds from the stream's start
     {"error": "..."}

With `phrases`, recognition is restricted to any sequence of them (a JSGF grammar): exact for
apps with a known vocabulary. Without, PocketSphinx's open-vocabulary language model is used.
No model is downloaded: everything comes with the wheel."""

import base64
import json
import re
import sys
import tempfile

from pocketsphinx import Decoder, Endpointer

PARTIAL_EVERY = 0.3  # seconds of audio between two partial results
SPEECH_EVERY = 0.1  # seconds of speech between two progress events (barge-in)


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def grammar(phrases):
    words = [re.sub(r"[^a-z' ]", " ", p.lower()).split() for p in phrases]
    alts = [" ".join(w) for w in words if w]
    if not alts:
        return None
    f = tempfile.NamedTemporaryFile("w", suffix=".jsgf", delete=False)
    f.write("#JSGF V1.0;\ngrammar hot;\npublic <s> = <p>+;\n<p> = " + " | ".join(alts) + ";\n")
    f.close()
    return f.name


class Stream:
    def __init__(self, sid, silence_ms, vad_level, phrases):
        self.id = sid
        # WebRTC's VAD modes 0-3 (3: most aggressive). Mode 3 misses speech that went through a
        # browser's Opus encoder; VadLevel (far-field suppression) raises it from 1.
        mode = max(0, min(3, 1 + vad_level))
        self.ep = Endpointer(window=max(0.24, min(2.0, silence_ms / 1000.0)), vad_mode=mode)
        # A quick detector for the progress events (barge-in): the sentence endpointer's window
        # is the silence that ends a sentence, and it would see speech that late.
        self.quick = Endpointer(window=0.2, vad_mode=mode)
        self.t = 0.0  # seconds of audio fed
        jsgf = grammar(phrases)
        kw = {"samprate": self.ep.sample_rate, "loglevel": "FATAL"}
        if jsgf:
            kw["jsgf"] = jsgf
        self.dec = Decoder(**kw)
        self.buf = b""
        self.in_utt = False
        self.last_partial = ""
        self.since_partial = 0.0
        self.speech = 0.0
        self.since_speech = 0.0

    def feed(self, pcm):
        self.buf += pcm
        n = self.ep.frame_bytes
        while len(self.buf) >= n:
            frame, self.buf = self.buf[:n], self.buf[n:]
            self.progress(frame)
            was = self.ep.in_speech
            speech = self.ep.process(frame)
            if speech is None:
                continue
            if not was:
                self.dec.start_utt()
                self.in_utt = True
                self.last_partial, self.since_partial = "", 0.0
            self.dec.process_raw(speech)
            self.since_partial += len(speech) / 2 / self.ep.sample_rate
            if not self.ep.in_speech:
                self.end()
            elif self.since_partial >= PARTIAL_EVERY:
                self.since_partial = 0.0
                h = self.dec.hyp()
                text = h.hypstr if h else ""
                if text and text != self.last_partial:
                    self.last_partial = text
                    emit({"id": self.id, "text": text, "final": False})

    def progress(self, frame):
        """Speech progress by the quick detector: seconds since the speech began (its start as
        the detector dates it, not counting the silence it buffers), every SPEECH_EVERY."""
        self.t += len(frame) / 2 / self.quick.sample_rate
        was = self.quick.in_speech
        if self.quick.process(frame) is None:
            return
        if not was:
            self.since_speech = 0.0
        self.since_speech += len(frame) / 2 / self.quick.sample_rate
        if self.since_speech >= SPEECH_EVERY and self.quick.in_speech:
            self.since_speech = 0.0
            emit({"id": self.id, "speech": round(self.t - self.quick.speech_start, 2)})

    def end(self):
        if not self.in_utt:
            return
        self.dec.end_utt()
        self.in_utt = False
        h = self.dec.hyp()
        text = h.hypstr if h else ""
        if text:
            emit({"id": self.id, "text": text, "final": True,
                  "start": round(self.ep.speech_start, 2), "end": round(self.ep.speech_end, 2)})

    def close(self):
        if self.in_utt:
            # Flush the endpointer's end, then the sentence.
            speech = self.ep.end_stream(self.buf)
            if speech is not None:
                self.dec.process_raw(speech)
            self.end()


def main():
    emit({"ready": True})
    streams = {}
    for line in sys.stdin:
        try:
            m = json.loads(line)
            if "pcm" in m:
                s = streams.get(m["pcm"])
                if s:
                    s.feed(base64.b64decode(m["b64"]))
            elif "open" in m:
                streams[m["open"]] = Stream(m["open"], int(m.get("vad_silence_ms", 1000)),
                                            int(m.get("vad_level", 0)), m.get("phrases") or [])
            elif "close" in m:
                s = streams.pop(m["close"], None)
                if s:
                    s.close()
        except Exception as e:  # one bad line must not end every stream
            emit({"error": f"{type(e).__name__}: {e}"})
    for s in streams.values():
        s.close()


if __name__ == "__main__":
    main()
