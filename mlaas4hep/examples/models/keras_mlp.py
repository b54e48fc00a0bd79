# The seed's Keras MLP, written for Keras 3 (learning_rate=, metrics=[...], return).
from keras.layers import Dense, Dropout, Input
from keras.models import Sequential
from tensorflow import keras


def model(idim):
    "Simple Keras model for testing purposes"
    ml_model = Sequential([Input(shape=(idim,)),
                           Dense(128, activation='relu'),
                           Dropout(0.5),
                           Dense(64, activation='relu'),
                           Dropout(0.5),
                           Dense(1, activation='sigmoid')])
    ml_model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                     loss=keras.losses.BinaryCrossentropy(),
                     metrics=[keras.metrics.AUC(name='auc')])
    return ml_model
