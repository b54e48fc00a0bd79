# A Keras MLP that also reads the mask: a model with two inputs is given (X, mask),
# where mask is 1 for a real value and 0 for jagged padding (X holds 0 there), so the
# network can tell "no jet" from "a jet with value 0".
import keras
from keras import layers


def model(idim):
    x = keras.Input(shape=(idim,), name="X")
    mask = keras.Input(shape=(idim,), name="mask")
    h = layers.Concatenate()([x, mask])
    h = layers.Dense(128, activation="relu")(h)
    h = layers.Dropout(0.3)(h)
    h = layers.Dense(64, activation="relu")(h)
    out = layers.Dense(1, activation="sigmoid")(h)
    net = keras.Model(inputs=[x, mask], outputs=out)
    net.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    return net
