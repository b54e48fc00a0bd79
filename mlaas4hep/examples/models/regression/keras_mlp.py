# A Keras MLP for regression (params.json "target": the branch to predict): one linear
# output, mean squared error, mean absolute error reported.
from keras.layers import Dense, Input
from keras.models import Sequential
from tensorflow import keras


def model(idim):
    ml_model = Sequential([Input(shape=(idim,)),
                           Dense(64, activation='relu'),
                           Dense(32, activation='relu'),
                           Dense(1)])
    ml_model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2),
                     loss='mse', metrics=['mae'])
    return ml_model
