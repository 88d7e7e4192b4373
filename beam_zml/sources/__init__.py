"""Where code comes from: the safe archive and directory reader (`repository`), the Zenodo client
(`zenodo`), the search sliced past Zenodo's 10,000-hit cap (`harvest`), and which of a record's
sources serves its code (`fetch`). No Beam: these are plain libraries the transforms call.
"""
