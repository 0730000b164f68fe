"""Slow join_words (an easy task for the 135M model)."""

def join_words(words):
    text = ""
    for word in words:
        if text:
            text = text + " "
        text = text + word
    return text
