"""Reading a built dataset back: its rows and Examples (`dataset`), a tf.data pipeline with
repository-grouped splits (`tfdata`), one record in the shapes of zenodo-ml's pickles without
TensorFlow (`zenodo_ml`), the HTML report (`report`), an image as text (`show`),
images as PNG files (`export_png`) and the baseline classifier (`classifier`).
"""
