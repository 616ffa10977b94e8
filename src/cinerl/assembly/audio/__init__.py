"""The film's soundtrack: narration (speech.py), the music bed (music.py), BS.1770-4 loudness
(loudness.py), the mix (mix.py), WAV stems and the AAC track (writer.py), and the stage that
puts them together with the run store (soundtrack.py). See docs/sound.md."""
