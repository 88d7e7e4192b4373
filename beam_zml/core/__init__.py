"""The build's core, pure logic with no Beam: what one file and one record become.

The image kernel (`imagify`), the facts of a file (`fileinfo`: extension, language, binary, SWHID),
one file to its files/ row and its Examples (`imaging`, `examples`, `example_proto`), the file tree
(`tree`), a Zenodo record's metadata as a records/ row (`records`), the errors/ row (`errors`), and how a
name made of raw bytes is shown (`names`).
Everything here is a plain function of its inputs, tested with plain pytest.
"""
