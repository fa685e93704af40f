"""Music as a sequence problem (issue 20): Bach chorale melodies read into events (`chorales`), their tokens
(`melody`), objective measures of generated melodies (`measures`) and MIDI, WAV and piano-roll output (`render`)."""
