"""Video and image backends behind one protocol each (`base`), found by name (`registry`)."""
